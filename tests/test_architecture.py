"""The package's structure: layered imports and public part interfaces.

(a) Modules import only from their own layer or the layers below it, so that, e.g.,
the linear solves never depend on the curvature models that use them. (b) Every
type named by a part's interface (its methods' and fields' annotations) is public:
a user can write a part against documented types only.
"""

import ast
import inspect
import typing
from pathlib import Path

import lineax as lx
import pytest

import quasinewton as qn

SRC = Path(qn.__file__).resolve().parent

#: Layers from the bottom; a module may import from its own layer and those
#: below. A folder is one layer; top-level modules are named.
LAYERS = [
    {"_lapack", "_misc", "_solution"},
    {"loss"},
    {"evaluation", "problem"},
    {"linear"},
    {"curvature"},
    {"descent"},
    {"termination"},
    {"_loop", "solvers"},
    {"_host", "_adjoint"},
    {"_solve", "diagnostics", "_covariance"},
    {"_report", "_curve_fit", "__init__"},
]


def _layer(unit: str) -> int:
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise AssertionError(f"{unit} is in no layer of LAYERS: add it")


def _unit(path: Path) -> str:
    """The layer unit of a source file: its folder, or its module name."""
    relative = path.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_units(path: Path) -> set[str]:
    """The units a source file imports from within the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    depth = len(path.relative_to(SRC).parts) - 1  # 0 for top-level modules
    units = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            if node.module and node.module.split(".")[0] == "quasinewton":
                parts = node.module.split(".")[1:]
                units.add(parts[0] if parts else "__init__")
            continue
        if node.level == 1 and depth == 1:
            continue  # from within the same folder
        parts = (node.module or "").split(".")
        if node.level == 1 and depth == 0:
            units.update([parts[0]] if parts[0] else [a.name for a in node.names])
        elif node.level == 2 and depth == 1:
            units.update([parts[0]] if parts[0] else [a.name for a in node.names])
        else:
            raise AssertionError(f"{path}: unexpected relative import level")
    return units


SOURCES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_import_only_from_their_layer_or_below(path):
    unit = _unit(path)
    upward = {
        imported
        for imported in _imported_units(path)
        if imported != unit and _layer(imported) > _layer(unit)
    }
    assert not upward, f"{path.relative_to(SRC)} ({unit}) imports from above: {upward}"


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check reads relative imports as the package does."""
    nested = SRC / "linear" / "context.py"
    assert "preconditioners" not in _imported_units(nested)  # same folder
    assert _imported_units(SRC / "curvature" / "_base.py") >= {
        "evaluation",
        "linear",
        "problem",
    }
    assert _layer("curvature") > _layer("linear")


def _public_objects() -> dict[int, str]:
    modules = [
        qn,
        qn.curvature,
        qn.descent,
        qn.evaluation,
        qn.linear,
        qn.loss,
        qn.problem,
        qn.termination,
    ]
    found = {}
    for module in modules:
        for name in module.__all__:
            found[id(getattr(module, name))] = f"{module.__name__}.{name}"
    return found


#: The classes a part is written against.
INTERFACES = [
    qn.curvature.AbstractCurvature,
    qn.curvature.AbstractHessianModel,
    qn.curvature.Model,
    qn.descent.AbstractDescent,
    qn.descent.Verdict,
    qn.termination.AbstractTermination,
    qn.termination.Progress,
    qn.linear.AbstractPreconditioner,
    qn.linear.AbstractForcing,
    qn.linear.LinearSolveContext,
    qn.problem.Problem,
    qn.problem.SumOfSquares,
    qn.loss.AbstractLoss,
    qn.evaluation.Evaluation,
    qn.evaluation.HessianEvaluation,
    qn.evaluation.JacobianEvaluation,
    qn.evaluation.NormalEvaluation,
    qn.evaluation.ResidualEvaluation,
]

#: The shared functions of trust-region rules.
FUNCTIONS = [qn.descent.ratio_test, qn.descent.damping_update, qn.descent.radius_update]


def _named_types(annotation):
    """The classes an annotation names, through unions, generics and tuples."""
    origin = typing.get_origin(annotation)
    if origin is not None:
        for arg in typing.get_args(annotation):
            yield from _named_types(arg)
        if isinstance(origin, type):
            yield origin
    elif isinstance(annotation, type):
        yield annotation


def _annotations(obj) -> dict[str, object]:
    if inspect.isclass(obj):
        hints = {}
        for klass in reversed(obj.__mro__):
            if klass.__module__.startswith("quasinewton"):
                hints.update(typing.get_type_hints(klass))
        for name, member in inspect.getmembers(obj):
            if name.startswith("_") and name != "__call__":
                continue
            function = getattr(member, "fget", member)
            if inspect.isfunction(function) and function.__module__.startswith(
                "quasinewton"
            ):
                for key, hint in typing.get_type_hints(function).items():
                    hints[f"{name}.{key}"] = hint
        return hints
    return typing.get_type_hints(obj)


@pytest.mark.parametrize(
    "interface", INTERFACES + FUNCTIONS, ids=lambda obj: obj.__qualname__
)
def test_part_interfaces_name_only_public_types(interface):
    public = _public_objects()
    assert id(interface) in public, f"{interface.__qualname__} is not public"
    private = {
        f"{where}: {klass.__module__}.{klass.__qualname__}"
        for where, hint in _annotations(interface).items()
        for klass in _named_types(hint)
        if klass.__module__.startswith("quasinewton") and id(klass) not in public
    }
    assert not private, f"types that are not public: {sorted(private)}"


def test_the_interface_check_sees_a_private_type():
    class Hidden:
        pass

    def part(x: Hidden) -> int:
        return 0

    part.__module__ = "quasinewton.fake"
    Hidden.__module__ = "quasinewton._fake"
    klasses = [
        k for hint in typing.get_type_hints(part).values() for k in _named_types(hint)
    ]
    assert Hidden in klasses and id(Hidden) not in _public_objects()


class _TaggedGaussNewton(qn.curvature.GaussNewton):
    tag: str = "mine"


class _TaggedNewton(qn.curvature.Newton):
    tag: str = "mine"


@pytest.mark.parametrize("part", [_TaggedGaussNewton(tag="x"), _TaggedNewton(tag="x")])
def test_specialise_keeps_the_type_and_fields(part):
    import jax.numpy as jnp

    from quasinewton.problem import make_problem

    kind = "residual" if isinstance(part, qn.curvature.GaussNewton) else "scalar"
    fn = (lambda y, _: y - 1.0) if kind == "residual" else (lambda y, _: y @ y)
    problem, x0, _ = make_problem(fn, jnp.zeros(3), None, kind, False)
    special = part.specialise(problem, x0)
    assert type(special) is type(part) and special.tag == "x"
    assert special.materialise is True  # "auto" resolved: n = 3 is small


@pytest.mark.parametrize(
    "solver, variant",
    [
        (qn.LevenbergMarquardt(), qn.evaluation.NormalEvaluation),
        (qn.LevenbergMarquardt(linear_solver=lx.QR()), None),
        (qn.Solver(qn.curvature.GaussNewton(True), qn.descent.TrustRegion()), None),
        (qn.LevenbergMarquardtCG(), qn.evaluation.ResidualEvaluation),
        (qn.Newton(), qn.evaluation.HessianEvaluation),
        (qn.LBFGS(), qn.evaluation.Evaluation),
    ],
)
def test_each_model_keeps_its_evaluation_variant(solver, variant):
    """The evaluation a solve ends with is the variant its model keeps, with the
    fields named for what they hold."""
    import jax.numpy as jnp

    y0 = jnp.zeros(3)
    sol = qn.least_squares(lambda y, _: jnp.concatenate([y - 1.0, y**2]), solver, y0)
    ev = sol.state.evaluation
    if variant is None:  # dense J kept for QR
        variant = qn.evaluation.JacobianEvaluation
        assert ev.jacobian.shape == (6, 3) and ev.residual.shape == (6,)
    assert type(ev) is variant
    assert float(ev.f) == pytest.approx(float(sol.stats["value"]))


def test_every_listed_slow_case_names_a_test():
    # tests/slow_cases.txt marks cases `slow` by node id (tests/conftest.py): a
    # renamed or removed test must not leave a line that silently marks nothing.
    from conftest import slow_cases

    tests = Path(__file__).parent
    for case in sorted(slow_cases()):
        path, _, name = case.partition("::")
        function = name.split("[")[0]
        source = (tests / path).read_text(encoding="utf-8")
        assert f"\ndef {function}(" in source, case
        if "[" in name:
            assert name.endswith("]") and "parametrize" in source, case
