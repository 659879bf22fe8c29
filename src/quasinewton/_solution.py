"""The result of a solve: `Solution`, the `RESULTS` codes and the `Termination` reasons."""

from typing import Any

import equinox as eqx
import jax
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, ArrayLike, PyTree


class _Probe(eqx.Enumeration):
    probe = ""


# Equinox's class of enumeration members, reached through a member because Equinox
# does not export it.
_EnumerationItem = type(_Probe.probe)


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _short_shape(x) -> str:
    """`f64[3,2]`-style dtype and shape of an array (traced or not)."""
    dtype = np.dtype(x.dtype)
    kind = {"f": "f", "i": "i", "u": "u", "c": "c", "b": "bool"}.get(dtype.kind, "?")
    name = "bool" if kind == "bool" else f"{kind}{8 * dtype.itemsize}"
    return f"{name}[{','.join(str(n) for n in np.shape(x))}]"


class _Member(_EnumerationItem):
    """A member of one of quasinewton's enumerations ([`quasinewton.RESULTS`][],
    [`quasinewton.Termination`][]): an Equinox enumeration item that prints by name
    and can be indexed when it holds a batch of codes."""

    def _names(self):
        names = np.array(list(self._enumeration._name_to_item), dtype=object)
        order = [
            item._value.item() for item in self._enumeration._name_to_item.values()
        ]
        by_code = np.empty(len(names), dtype=object)
        by_code[order] = names
        codes = np.asarray(self._value)
        return by_code[codes.reshape(-1)].reshape(codes.shape)

    def __repr__(self) -> str:
        cls = self._enumeration.__name__
        if _is_traced(self._value):
            shape = np.shape(self._value)
            return f"{cls}[traced{'' if shape == () else f' {shape}'}]"
        if np.ndim(self._value) == 0:
            return f"{cls}.{self._names().item()}"
        counts = ", ".join(f"{name} ×{n}" for name, n in self.counts().items())
        shape = np.shape(self._value)
        prefix = f"{shape}: " if len(shape) > 1 else ""
        return f"{cls}[{prefix}{counts}]"

    __str__ = __repr__

    def _concrete_scalar(self, what: str) -> None:
        if _is_traced(self._value):
            raise ValueError(f"`{what}` is unknown for a traced member (inside jit).")
        if np.ndim(self._value) != 0:
            raise ValueError(
                f"`{what}` needs a single member, but this one holds a batch of shape "
                f"{np.shape(self._value)}: index it first (`sols.result[i]{what}`), "
                "or use `.counts()`."
            )

    @property
    def name(self) -> str:
        """The member's name, e.g. `"successful"` (a single, concrete member only)."""
        self._concrete_scalar(".name")
        return self._names().item()

    @property
    def message(self) -> str:
        """The member's message, as `qn.RESULTS[member]` gives it (empty for
        `successful`; a single, concrete member only)."""
        self._concrete_scalar(".message")
        return self._enumeration[self]

    def counts(self) -> dict[str, int]:
        """How many entries hold each member, by name, in the enumeration's order
        and leaving out those that never occur: `{"successful": 1}` for a single
        member. (Concrete values only.)"""
        if _is_traced(self._value):
            raise ValueError("`.counts()` is unknown for a traced member (inside jit).")
        names = self._names().reshape(-1)
        return {
            name: int(np.sum(names == name))
            for name in self._enumeration._name_to_item
            if np.any(names == name)
        }

    def __getitem__(self, index) -> "_Member":
        if np.ndim(self._value) == 0:
            raise TypeError(
                f"{self!r} is a single member, not a batch: only a member returned "
                "from `jax.vmap` can be indexed."
            )
        return _index_batch(self, np.shape(self._value), index)

    def __iter__(self):
        if np.ndim(self._value) == 0:
            raise TypeError(f"{self!r} is a single member, not a batch.")
        return (self[i] for i in range(np.shape(self._value)[0]))


@eqx.filter_jit
def _take(tree, positions, num_batch_axes: int):
    def take(leaf):
        if not isinstance(leaf, jax.Array) or leaf.ndim < num_batch_axes:
            return leaf
        flat = leaf.reshape(-1, *leaf.shape[num_batch_axes:])
        return flat[positions]

    return jtu.tree_map(take, tree)


def _index_batch(tree, batch_shape: tuple[int, ...], index):
    """Index every array leaf of `tree` on its leading axes, of shape `batch_shape`,
    as a NumPy array of that shape would be indexed by `index`."""
    if any(_is_traced(i) for i in (index if isinstance(index, tuple) else (index,))):
        return jtu.tree_map(lambda leaf: leaf[index] if np.ndim(leaf) else leaf, tree)
    # The positions the index picks out of the flattened batch, checked by NumPy
    # (bounds included), then one compiled gather for all the leaves.
    positions = np.arange(int(np.prod(batch_shape))).reshape(batch_shape)[index]
    return _take(tree, jax.numpy.asarray(positions), len(batch_shape))


def _member(cls, value) -> _Member:
    """A member of `cls` holding `value` (of any shape), built without `__init__`."""
    template = next(iter(cls._name_to_item.values()))
    return jtu.tree_unflatten(jtu.tree_structure(template), [value])


def _as_member(item) -> _Member:
    if isinstance(item, _Member):
        return item
    return _member(item._enumeration, item._value)


def _where(cls, pred, a, b):
    return _as_member(eqx.Enumeration.where.__func__(cls, pred, a, b))


def _promote(cls, item):
    return _as_member(eqx.Enumeration.promote.__func__(cls, item))


class _ReadableEnumerationMeta(type(eqx.Enumeration)):
    """Equinox's enumeration class, with members of class `_Member`."""

    def __new__(mcs, name, bases, namespace):
        cls = super().__new__(mcs, name, bases, namespace)
        for key, item in cls._name_to_item.items():
            cls._name_to_item[key] = _Member(item._value, cls)
        # `where` and `promote` build new members: they must be `_Member`s too, or a
        # loop carrying a member would change its pytree type.
        cls.where = classmethod(_where)
        cls.promote = classmethod(_promote)
        return cls


class _ReadableEnumeration(eqx.Enumeration, metaclass=_ReadableEnumerationMeta):
    pass


class RESULTS(_ReadableEnumeration):
    """How a solve ended.

    Compare with `==`, e.g. `sol.result == qn.RESULTS.successful`; under `jax.vmap`
    the comparison is per problem. `qn.RESULTS[sol.result]` (or
    `sol.result.message`) gives the message, and `sol.result.name` the name.

    A member prints by name, e.g. `RESULTS.successful`. A member returned from
    `jax.vmap` holds one code per problem: it prints the number of problems with
    each result, e.g. `RESULTS[successful ×48, max_steps_reached ×2]`, indexing it
    (`sols.result[17]`) gives the member of that problem, and `.counts()` gives the
    numbers as a dict, `{"successful": 48, "max_steps_reached": 2}`.
    """

    successful = ""
    max_steps_reached = (
        "The maximum number of steps was reached before the solve converged. "
        "Increase `max_steps`, loosen `rtol`/`atol`, or check the problem."
    )
    nonfinite = (
        "A non-finite value (nan or inf) was met: the objective or its derivative "
        "was not finite at the start, or no finite trial point could be found. "
        "`Solution.value` holds the last finite iterate."
    )
    search_failed = (
        "The descent rule could find no point better than the current one (the line "
        "search failed from a steepest-descent direction, or the trust region "
        "shrank to nothing) before the tolerances were met. This usually means the "
        "tolerances are below what the floating-point precision allows, or the "
        "derivative is wrong."
    )


class Termination(_ReadableEnumeration):
    """Which test stopped a successful solve, in `Solution.stats["termination"]`.

    It prints, indexes and counts like [`quasinewton.RESULTS`][].

    See [`quasinewton.Solver`][] for the tests themselves.
    """

    none = "The solve has not converged."
    gradient = "The gradient fell by a factor rtol from the start (or below atol)."
    step = (
        "The last full step changed the objective by at most rtol times the size of "
        "the objective and every coordinate by at most rtol·max|y| (plus atol), near "
        "a stationary point."
    )
    precision = (
        "No further decrease is possible in floating point (the model predicted a "
        "decrease below the rounding of f and none was found), and the iterate is "
        "stationary to √rtol: the tolerances asked for more than the arithmetic "
        "allows and the iterate is as good as the precision allows."
    )
    decrease = (
        "(L-BFGS, BFGS) the last full step gained at most rtol times the size of the "
        "objective, and a step of its length down the gradient could gain at most a "
        "tenth of that."
    )


class Solution(eqx.Module):
    """The outcome of [`quasinewton.minimise`][] or [`quasinewton.least_squares`][].

    Every field holds arrays only, so a whole `Solution` may be returned from
    `jax.jit` and `jax.vmap`; under `vmap` each field gains a batch axis.

    **Attributes:**

    - `value`: the solution, a pytree with the structure of `y0`.
    - `result`: a [`quasinewton.RESULTS`][] member saying whether the solve succeeded.
    - `aux`: the auxiliary output of `fn` at `value` when `has_aux=True`, else `None`.
    - `stats`: a dict of counters and diagnostics:
        - `num_steps`: loop iterations run; each evaluates the objective at one
          trial point.
        - `num_accepted_steps`: trial points accepted as the new iterate (the
          algorithm's iterations, comparable with SciPy's `nit`).
        - `num_fn_evals`: evaluations of `fn` (the start point included): how
          many times `fn` ran, on both paths. Under `jax.jit` this includes the
          re-linearisations after rejected trust-region trials of matrix-free
          models; called from Python, the loop evaluates ahead of its test for
          whether to go on, and the one evaluation it queues after the last
          iteration does not run `fn` and is not counted. (Each evaluation runs
          `fn` once, its derivatives included; a Python side effect in `fn`
          happens only when it is traced.)
        - `num_jac_evals` (least squares only): Jacobians formed or linearisations
          made, counted as `num_fn_evals`.
        - `num_residuals` (least squares only): m, the number of residuals.
        - `num_linear_steps`: iterations spent in iterative linear solves (CG).
        - `value`: the objective at `value` (for least squares, ½‖r‖²).
        - `gradient_norm`: the max-norm of the gradient at `value`.
        - `termination`: a [`quasinewton.Termination`][] member, the test that
          stopped a successful solve.
        - `loss_history` (only with `history=True`): the objective at the iterate
          after each loop iteration, padded with `nan` after the last.
        - `rank` (only with `least_squares(..., rank=True)`): the numerical rank of
          J̃ at `value`, an int32; below the number of unknowns, some are not
          determined by the data.
    - `state`: the final state of the solver's loop (arrays only).
    - `objective`: for least squares, the objective minimised (its `sigma` and
      `loss`, a [`quasinewton.problem.SumOfSquares`][]), which
      [`quasinewton.covariance`][] reads; `None` for `minimise`.
    - `method`: the solver's parts, e.g. `"GaussNewton, TrustRegion"`, for reports.

    **Printing.** `print(sol)` gives one line with the numbers a reader looks at
    first, e.g. `Solution(result=RESULTS.successful, termination=Termination.gradient,
    value=[1, 1], f=1.23e-05, steps=12, evals=14)`: the value shows its numbers when
    each leaf has at most six elements and the line stays short, else the dtype and
    shape of each leaf (`f64[1000]`); `f` is `stats["value"]`, `steps`
    `stats["num_steps"]` and `evals` `stats["num_fn_evals"]`. A batch prints its
    size, the count of each result and termination, and the shape of the value.
    Traced fields (a `Solution` printed inside `jax.jit`) print as shapes, so
    printing never fails. `sol.summary()` (below) says more.

    **Batches.** A `Solution` returned from `jax.vmap` (one whose `result` holds an
    array of codes) indexes like a NumPy array over its batch axes: `sols[i]` is the
    `Solution` of problem `i`, and `sols[2:5]`, `sols[mask]` or `sols[indices]` are
    smaller batches. Every array leaf of every field (`value`, `result`, `aux`,
    `stats`, `state`) is indexed on its leading batch axes, so each field comes out
    as the solve of that problem alone would have given it. With two `vmap`s the
    index applies to the outer batch axis first, as in NumPy. `len(sols)` is the
    length of the outer batch axis, and iterating gives the problems one by one.
    Indexing or `len` of a single solve's `Solution` raises a `TypeError`.
    `sols.result[i]` is the result of problem `i` alone, and
    `sols.result.counts()` the number of problems with each result.
    """

    value: PyTree[Array]
    result: RESULTS
    aux: Any
    stats: dict[str, PyTree[ArrayLike]]
    state: Any
    objective: Any = None
    method: str = eqx.field(default="", static=True)

    def _batch_shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.result._value))

    def _require_batch(self, what: str) -> tuple[int, ...]:
        shape = self._batch_shape()
        if not shape:
            raise TypeError(
                f"{what} needs a batch of solves, but this Solution is of a single "
                "solve: only a Solution returned from `jax.vmap` holds a batch."
            )
        return shape

    def __getitem__(self, index) -> "Solution":
        return _index_batch(self, self._require_batch("Indexing a Solution"), index)

    def __len__(self) -> int:
        return self._require_batch("`len` of a Solution")[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        # Defined so that `__len__` (batches only) is not used for truth testing.
        return True

    def __repr__(self) -> str:
        stats = self.stats
        termination = stats.get("termination")
        fields = [f"result={self.result!r}"]
        if termination is not None:
            fields.append(f"termination={termination!r}")
        shape = self._batch_shape()
        if shape:
            batch = shape[0] if len(shape) == 1 else shape
            fields = [f"batch={batch}", *fields, f"value={_tree_text(self.value, 0)}"]
        else:
            fields.append(f"value={_tree_text(self.value)}")
            for name, key in (("f", "value"), ("steps", "num_steps")):
                if key in stats:
                    fields.append(f"{name}={_number(stats[key])}")
            if "num_fn_evals" in stats:
                fields.append(f"evals={_number(stats['num_fn_evals'])}")
        return f"Solution({', '.join(fields)})"

    __str__ = __repr__

    def summary(self) -> str:
        """A short account of how the solve, or the batch of solves, ended, for a
        log or a report. For the numbers themselves use `sol.result.counts()`,
        `sol.stats["termination"].counts()` and `sol.stats`.

        **Returns:**

        A string. For a single solve, one line: the result (with the termination
        test when successful), the steps and evaluations of `fn` it took, and `f`
        and max|∇f| at `value`. For a batch (a `Solution` returned from
        `jax.vmap`), a few lines: the number of solves, how many ended with each
        result, how many of the successful ones each termination test stopped,
        and the spread of `num_steps`. A `Solution` of traced values (inside
        `jax.jit`) says only that.
        """
        if _is_traced(self.result._value):
            return "Solution of traced values: its results are known only at run time."
        stats = self.stats
        termination = stats.get("termination")
        shape = self._batch_shape()
        if not shape:
            head = f"{self.result!r}"
            if termination is not None and self.result == RESULTS.successful:
                head += f" ({termination!r})"
            counts = []
            if "num_steps" in stats:
                n = int(stats["num_steps"])
                counts.append(f"{n} step{'' if n == 1 else 's'}")
            if "num_fn_evals" in stats:
                n = int(stats["num_fn_evals"])
                counts.append(f"{n} evaluation{'' if n == 1 else 's'} of fn")
            if counts:
                head += " after " + " and ".join(counts)
            values = []
            if "value" in stats:
                values.append(f"f = {_number(stats['value'])}")
            if "gradient_norm" in stats:
                values.append(f"max|∇f| = {_number(stats['gradient_norm'])}")
            return head + (": " + ", ".join(values) if values else "")
        size = int(np.prod(shape))
        batch = f"{size} solves" + (f" (batch shape {shape})" if len(shape) > 1 else "")
        lines = [f"{batch}: {self.result!r}"]
        if termination is not None:
            ok = np.asarray(self.result == RESULTS.successful)
            if ok.any():
                lines.append(
                    f"successful ones by termination: {termination[ok]!r}"
                    if ok.ndim == 1
                    else f"termination: {termination!r}"
                )
        if "num_steps" in stats:
            steps = np.asarray(stats["num_steps"])
            lines.append(
                f"num_steps: min {steps.min()}, median {np.median(steps):g}, "
                f"max {steps.max()}"
            )
        return "\n".join(lines)


_SMALL = 6  # a leaf of at most this many elements prints its numbers, else its shape
_WIDE = 80  # a value printing wider than this prints shapes instead


class _Text:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _leaf_text(leaf, small: int) -> str:
    if not hasattr(leaf, "dtype"):
        return repr(leaf)
    if _is_traced(leaf) or np.size(leaf) > small:
        return _short_shape(leaf)
    return np.array2string(
        np.asarray(leaf), separator=", ", formatter={"float_kind": _float_text}
    )


def _float_text(x) -> str:
    return f"{x:.4g}"


def _tree_text(tree, small: int = _SMALL) -> str:
    """`tree` in one short line: small leaves by their numbers, others by shape."""
    leaves = jtu.tree_leaves(tree)
    if len(leaves) == 1 and leaves[0] is tree:
        return _leaf_text(tree, small)
    for limit in (small, 0):
        text = repr(
            jtu.tree_map(lambda leaf, n=limit: _Text(_leaf_text(leaf, n)), tree)
        )
        if len(text) <= _WIDE:
            return text
    return f"<{type(tree).__name__} of {len(leaves)} arrays>"


def _number(x) -> str:
    if _is_traced(x) or np.ndim(x) != 0:
        return _short_shape(x)
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        return str(int(x))
    return f"{float(x):.3g}"
