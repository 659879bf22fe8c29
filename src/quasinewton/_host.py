"""The loop driven from Python, for solves called outside any JAX transformation.

A solve under `jax.jit` compiles the objective and the solver's logic into one
program: the best choice for repeated or batched solves, but the solver's logic
(line search, model update, tests: most of the program) is compiled again for
every new objective, 0.5–1 s on a CPU. Called eagerly, as one calls SciPy, the
same iterations run as two compiled functions called in turn from Python:

- the evaluation of the objective (and what the model needs of it) at the trial
  point, compiled for this objective;
- `_loop.advance`, which does not depend on the objective, compiled once per
  solver, dtype and shape (for L-BFGS and BFGS, n rounded up to a power of two:
  `padded_size`) and reused by every later solve, whatever its objective.

Both paths run `_loop.advance` on the same evaluations, so they take the same
iterations up to the rounding of fused arithmetic.
"""

import collections
import contextlib
import contextvars
import functools
import math
import types
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np

from ._loop import (
    LoopState,
    advance,
    finish,
    initial_state,
    keep_going,
    placeholder_leaf,
)
from .problem import Problem


def _recall(cache: collections.OrderedDict, key):
    """`cache[key]` (marked as the most recently used) or `None`."""
    found = cache.get(key)
    if found is not None:
        cache.move_to_end(key)
    return found


def _remember(cache: collections.OrderedDict, key, value, limit: int):
    """Store `cache[key] = value`, dropping the least recently used beyond `limit`."""
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)


#: How many distinct static arguments `_Static.of` keeps interned.
_MAX_INTERNED = 256


class _Static:
    """Static arguments of a cached compiled function, hashed once and interned:
    `jax.jit` compares static arguments with those of its cache entries at every
    call, and comparing a solver field by field costs more than the call itself,
    so equal arguments are made the same object (`_Static.of`). The most recently
    used `_MAX_INTERNED` are kept; an evicted one is only compared field by field
    again (the compiled functions stay in JAX's caches)."""

    _interned: ClassVar["collections.OrderedDict[_Static, _Static]"] = (
        collections.OrderedDict()
    )

    def __init__(self, *items):
        self.items = items
        self._hash = hash(items)

    @classmethod
    def of(cls, *items) -> "_Static":
        new = cls(*items)
        found = _recall(cls._interned, new)
        if found is not None:
            return found
        _remember(cls._interned, new, new, _MAX_INTERNED)
        return new

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, _Static) and (
            self is other or self.items == other.items
        )


def _is_traced(leaf) -> bool:
    return isinstance(leaf, jax.core.Tracer)


def can_run_on_host(problem: Problem, solver, x0) -> bool:
    """Whether this solve can run as a Python loop: nothing is being traced (no
    `jax.jit`, `jax.grad` or `jax.vmap` acting on the problem), the model carries no
    linearisation between functions, and the solver is hashable (its compiled step
    is cached on it)."""
    if solver.curvature.needs_linearisation:
        return False
    if any(_is_traced(leaf) for leaf in jax.tree.leaves((problem, x0))):
        return False
    # Under jax.jit every new array is a tracer, even one made from constants.
    if _is_traced(jnp.zeros(())):
        return False
    try:
        hash(solver)
    except TypeError:
        return False
    return True


@functools.partial(jax.jit, static_argnums=0)
def _initial(static: _Static, x0):
    solver, ev_def, ev_shapes, max_steps, history, bounded_below = static.items
    placeholder = jax.tree.unflatten(ev_def, [placeholder_leaf(s) for s in ev_shapes])
    return initial_state(solver, placeholder, x0, max_steps, history, bounded_below)


def _layout(leaves) -> tuple:
    """Each leaf's dtype and shape, in order: how `_pack` lays the leaves out."""
    return tuple((leaf.dtype, tuple(leaf.shape)) for leaf in leaves)


def _packable(dtype) -> bool:
    """Whether leaves of this dtype are packed: not JAX's extended dtypes (PRNG
    keys, say, in the user's aux), which have no NumPy form and are passed as
    they are."""
    return not jax.dtypes.issubdtype(dtype, jax.dtypes.extended)


def _dtypes(layout: tuple) -> tuple:
    """The packed dtypes of `layout`, in order of first appearance."""
    return tuple(dict.fromkeys(dtype for dtype, _ in layout if _packable(dtype)))


def _pack(leaves, layout: tuple, xp) -> tuple:
    """The leaves as one flat buffer per dtype (each buffer the leaves of that dtype
    one after another), followed by any leaves of extended dtypes as they are; `xp`
    is `jnp` inside a compiled function, `np` on the host.

    Why: every array passed to or returned by a compiled function costs about 2 µs
    of dispatch on a CPU. The loop state has some 40 leaves, so passing them one by
    one cost ~0.15 ms per iteration, more than the step itself; packed, it is a few
    buffers."""
    packed = tuple(
        xp.concatenate(
            [
                xp.reshape(leaf, (-1,))
                for leaf, (d, _) in zip(leaves, layout, strict=True)
                if d == dtype
            ]
        )
        for dtype in _dtypes(layout)
    )
    return packed + tuple(
        leaf for leaf, (d, _) in zip(leaves, layout, strict=True) if not _packable(d)
    )


def _unpack(buffers, layout: tuple) -> list:
    """The inverse of `_pack`: the leaves, sliced out of `buffers`."""
    dtypes = _dtypes(layout)
    starts = [0] * len(dtypes)
    extended = iter(buffers[len(dtypes) :])
    leaves = []
    for dtype, shape in layout:
        if not _packable(dtype):
            leaves.append(next(extended))
            continue
        group = dtypes.index(dtype)
        size = math.prod(shape)
        leaves.append(
            buffers[group][starts[group] : starts[group] + size].reshape(shape)
        )
        starts[group] += size
    return leaves


def _on_host(arrays) -> list:
    """Device arrays as NumPy arrays, except those of extended dtypes."""
    return [np.asarray(a) if _packable(a.dtype) else a for a in arrays]


@functools.partial(jax.jit, static_argnums=0)
def _advance(static: _Static, state_buffers, ev_leaves, max_steps):
    solver, state_def, layout, ev_def, num_fn, num_jac = static.items
    state = jax.tree.unflatten(state_def, _unpack(state_buffers, layout))
    evaluation = jax.tree.unflatten(ev_def, ev_leaves)
    new = advance(solver, None, state, (evaluation, None, num_fn, num_jac))
    new_buffers = _pack(jax.tree.leaves(new), layout, jnp)
    return new_buffers, new.trial, keep_going(new, max_steps)


#: `_loop.finish`, compiled once per (padded) state structure.
_finish = jax.jit(finish)


def _pad(x, size: int):
    """`x` (concrete) padded with zeros to `size`, in NumPy and put on the device:
    unlike `jnp.pad` or `jnp.asarray`, this compiles nothing for each new n."""
    return jax.device_put(np.pad(np.asarray(x), (0, size - x.size)))


def _cut(state: LoopState, n: int) -> LoopState:
    """The iterate, trial, direction and gradient cut back to the problem's n
    unknowns (the model's memory keeps its padded size); in NumPy, as `_pad`."""
    return eqx.tree_at(
        lambda s: (s.x, s.trial, s.direction, s.evaluation.grad),
        state,
        tuple(
            jax.device_put(np.asarray(v)[:n])
            for v in (state.x, state.trial, state.direction, state.evaluation.grad)
        ),
    )


#: Compiled evaluations of recent problems (least recently used first), so that
#: solving the same function again compiles nothing.
_EVALUATORS: "collections.OrderedDict[Any, tuple]" = collections.OrderedDict()
_MAX_EVALUATORS = 32


def _frozen(flat):
    """A flattened pytree `(leaves, treedef)` as a hashable pair."""
    leaves, treedef = flat
    return tuple(leaves), treedef


class _Same:
    """A key part equal only to a part holding the very same object, which it keeps
    alive: held in a cache key, it cannot be collected and its `id` reused by a
    new object."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, _Same) and self.obj is other.obj


#: Primitives whose behaviour is not in a jaxpr's text: callbacks into Python (the
#: text names no function: `callback=<function ... at 0xXXXX>`), custom derivative
#: rules (traced only when differentiated, from functions the text names only),
#: and calls of foreign functions or custom partitionings.
_OPAQUE_PRIMITIVES = frozenset(
    {
        "pure_callback",
        "io_callback",
        "debug_callback",
        "debug_print",
        "callback",
        "custom_jvp_call",
        "custom_vjp_call",
        "custom_vjp_call_jaxpr",
        "custom_lin",
        "custom_transpose_call",
        "custom_partitioning",
        "ffi_call",
        "custom_call",
    }
)


def _globals_read(fn) -> tuple:
    """The globals the code of the Python function `fn` reads (and, recursively,
    those of the functions of its module it reads), as (name, value) pairs, the
    values by identity: rebinding one (new data assigned to a global, say) makes
    another key, for what was compiled read the old value."""
    found, seen, pending = {}, set(), [fn]
    module = getattr(fn, "__module__", None)
    while pending:
        current = pending.pop()
        code = getattr(current, "__code__", None)
        namespace = getattr(current, "__globals__", None)
        if code is None or namespace is None or id(current) in seen:
            continue
        seen.add(id(current))
        codes = [code]
        while codes:
            c = codes.pop()
            codes.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
            for name in c.co_names:
                if name in namespace and (id(namespace), name) not in found:
                    value = namespace[name]
                    found[(id(namespace), name)] = (name, _Same(value))
                    helper = isinstance(value, types.FunctionType)
                    if helper and value.__module__ == module:
                        pending.append(value)
    return tuple(found.values())


def _identity(fn, read_globals: bool = True):
    """What identifies the function object `fn`: the object itself and the objects
    bound in it (its closure's cells and its defaults, which can be rebound) and,
    with `read_globals`, the globals it reads (`_globals_read`), all by identity
    and kept alive by the key."""
    bound = []
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            bound.append(_Same(cell.cell_contents))
        except ValueError:  # an empty cell
            bound.append(None)
    for name in ("__defaults__", "__kwdefaults__"):
        bound.append(_Same(getattr(fn, name, None)))
    if read_globals:
        bound.append(_globals_read(fn))
    return _Same(fn), tuple(bound)


class _Opaque(Exception):
    """Raised by `_survey` on finding what a jaxpr's text does not determine."""


def _survey(jaxpr) -> tuple:
    """What the text of `jaxpr` leaves out, if it determines the program otherwise:
    the primitives it uses (two may share a name), the constants of the jaxprs
    nested in its equations (not printed) and the Python objects among its
    parameters (a remat policy, a PRNG implementation's functions: printed by
    name, if at all), all by identity (`_Same`; JAX arrays cannot change), and
    meshes by value. Raises `_Opaque` if the text does not determine the program:
    an opaque primitive (`_OPAQUE_PRIMITIVES`), whose Python functions are made
    anew for every trace, a nested constant that is not a JAX array (a NumPy
    array can change), a parameter that is a NumPy array, or an array literal."""
    primitives, unprinted = {}, []
    pending, seen = [jaxpr], set()

    def visit(value):
        if isinstance(value, jax.extend.core.ClosedJaxpr):
            for const in value.consts:
                if not isinstance(const, jax.Array):
                    raise _Opaque
                unprinted.append(_Same(const))
            pending.append(value.jaxpr)
        elif isinstance(value, jax.extend.core.Jaxpr):
            pending.append(value)
        elif isinstance(value, jax.Array):
            unprinted.append(_Same(value))
        elif isinstance(value, np.ndarray):
            raise _Opaque
        elif isinstance(value, (jax.sharding.Mesh, jax.sharding.AbstractMesh)):
            unprinted.append(value)
        elif callable(value) and not isinstance(value, type):
            unprinted.append(_identity(value, read_globals=False))
        elif hasattr(value, "call_wrapped"):  # JAX's wrapped Python functions
            unprinted.append(_Same(value))
        elif isinstance(value, (tuple, list)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)

    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for eqn in current.eqns:
            if eqn.primitive.name in _OPAQUE_PRIMITIVES:
                raise _Opaque
            primitives[id(eqn.primitive)] = eqn.primitive
            for var in eqn.invars:
                if isinstance(var, jax.extend.core.Literal) and np.ndim(var.val) != 0:
                    raise _Opaque
            for value in eqn.params.values():
                visit(value)
    return tuple(map(_Same, primitives.values())), tuple(unprinted)


#: The function given to the solve being run (see `solving`), for `_key`.
_USER_FN: contextvars.ContextVar = contextvars.ContextVar(
    "quasinewton_user_fn", default=None
)


@contextlib.contextmanager
def solving(fn, args=None):
    """Within this context, solves are of the user's function `fn` (the object
    given to `minimise` or `least_squares`, before closure conversion) with the
    user's `args`, whose parts other than arrays (Python numbers: closed over by
    `make_problem`, so compiled in) identify the program too."""
    static = jax.tree.leaves(eqx.filter(args, eqx.is_array, inverse=True))
    token = _USER_FN.set((_Same(fn), tuple(map(_Same, static))))
    try:
        yield
    finally:
        _USER_FN.reset(token)


def _program(fn):
    """What determines the program of the closure-converted user's function `fn`,
    up to the values of its arrays (the problem's dynamic leaves), or `None`.

    For a function closing over something, its jaxpr as text (with its literals:
    closed-over Python numbers) when the text provably determines the program (see
    `_survey`), so that different function objects of the same program (a lambda
    made anew for every solve, over other arrays) share one compiled evaluation;
    otherwise the user's function object itself (`_identity`), and no sharing. A
    function closing over nothing was not traced: its object (as `jax.jit` keys
    it), and the globals it reads, which were compiled in."""
    if not hasattr(fn, "jaxpr"):
        return ("function", *_identity(fn.fn))
    # The closed-over values must reach the program as arrays of the problem;
    # anything else would be compiled in.
    if not all(eqx.is_array(c) for c in jax.tree.leaves(fn.consts)):
        return None
    text = str(fn.jaxpr)
    try:
        unprinted = _survey(fn.jaxpr)
    except _Opaque:
        solved = _USER_FN.get()
        if solved is None:
            return None
        user_fn, static_args = solved
        unprinted = ("function", *_identity(user_fn.obj), static_args)
    return (text, unprinted, _frozen(fn.out_dynamic_struct), _frozen(fn.out_static))


def _key(problem: Problem, curvature, dyn_leaves):
    """What identifies a problem up to the values of its arrays, or `None`: the
    program of the user's function (`_program`), the structure of its inputs and
    outputs, and the layout of its arrays. Two problems with the same key are the
    same function of different array values, so one compiled evaluation serves
    both; a key never matches another function's program (where that cannot be
    proven from the jaxpr, it holds the function object)."""
    fn = problem.fn
    try:
        program = _program(fn)
        if program is None:
            return None
        key = (
            program,
            _frozen(fn.in_dynamic_struct),
            _frozen(fn.in_static),
            problem.kind,
            problem.has_aux,
            problem.autodiff_mode,
            # The objective's parts (which loss, whether weighted): its arrays'
            # shapes alone could not tell two losses apart.
            jax.tree.structure(problem.objective),
            curvature,
            # Not the tree structure of `dyn_leaves`: it holds `problem.unravel`, a
            # new function for every solve; the structures above determine it.
            tuple((leaf.shape, leaf.dtype) for leaf in dyn_leaves),
        )
        hash(key)
    except (AttributeError, TypeError):
        return None
    return key


def padded_size(curvature, n: int) -> int:
    """The number of unknowns the solver's step is compiled for: for models whose
    steps padding leaves exact (`curvature.padding_is_exact`: L-BFGS, BFGS) with
    n ≤ `_MAX_PADDED`, n rounded up to a power of two and to at
    least `_MIN_PADDED`, so that problems of nearby sizes (every small problem) share
    one compiled step; otherwise n.

    Padding is exact for inverse models: the extra unknowns start at 0 with a zero
    gradient, so every step, curvature pair and inner product leaves them at 0 and
    adds nothing (BFGS keeps an identity block for them that never couples to the
    others). Models of B (Newton, Gauss–Newton) would become singular; they are not
    padded."""
    if not curvature.padding_is_exact or n > _MAX_PADDED:
        return n
    return max(_MIN_PADDED, 1 << (n - 1).bit_length())


#: Largest n whose compiled step is shared with nearby sizes (see `padded_size`);
#: beyond it the up to 2× longer vectors would cost more than a compilation saves.
_MAX_PADDED = 1024

#: Smallest padded size. Compiling the step costs far more than a step on 32
#: unknowns instead of 2 (dispatch dominates), so all problems with n ≤ 32 share
#: one compiled step (docs/benchmarks/defaults.md has the measurements).
_MIN_PADDED = 32


def _evaluator(problem: Problem, curvature, x0, size: int):
    """The compiled evaluation at a (padded) trial point for this problem and model,
    with the structure of its output, its evaluation counts and the problem's
    arrays. The gradient is padded with zeros to `size` unknowns."""
    dynamic, static = eqx.partition(problem, eqx.is_array)
    dyn_leaves, dyn_def = jax.tree.flatten(dynamic)
    key = _key(problem, curvature, dyn_leaves)
    if key is not None:
        key = (key, size)
        found = _recall(_EVALUATORS, key)
        if found is not None:
            return (*found, dyn_leaves)
    n = x0.size
    counts = []

    def evaluation_at(problem, x):
        evaluation, _, num_fn, num_jac = curvature.evaluate(problem, x[:n])
        counts.append((num_fn, num_jac))
        if size > n:
            grad = jnp.pad(evaluation.grad, (0, size - n))
            evaluation = eqx.tree_at(lambda e: e.grad, evaluation, grad)
        return evaluation

    x0 = _pad(x0, size)
    structure, shapes = [], []

    def evaluated_leaves(dyn_leaves, x):
        problem = eqx.combine(jax.tree.unflatten(dyn_def, dyn_leaves), static)
        leaves, treedef = jax.tree.flatten(evaluation_at(problem, x))
        structure.append(treedef)
        shapes.append([jax.ShapeDtypeStruct(v.shape, v.dtype) for v in leaves])
        return leaves

    def skipped(dyn_leaves, x):
        # `lax.cond` traces its branches in order, so the shapes are known here
        # (tracing the objective again only if they are not).
        if shapes:
            leaf_shapes = shapes[-1]
        else:
            leaf_shapes = jax.eval_shape(evaluated_leaves, dyn_leaves, x)
        return [jnp.zeros(v.shape, v.dtype) for v in leaf_shapes]

    @jax.jit
    def evaluate(dyn_leaves, x, wanted):
        # `wanted` is `False` only for the one evaluation the loop queues after
        # its last iteration (see `run_on_host`): the objective is then not run,
        # and zeros of the right shapes are returned, to be discarded.
        return jax.lax.cond(wanted, evaluated_leaves, skipped, dyn_leaves, x)

    # Traces `evaluate` once; its first call below reuses this trace.
    ev_shapes = jax.eval_shape(evaluate, dyn_leaves, x0, True)
    ev_def, (num_fn, num_jac) = structure[0], counts[0]

    entry = (evaluate, tuple(ev_shapes), ev_def, num_fn, num_jac)
    if key is not None:
        _remember(_EVALUATORS, key, entry, _MAX_EVALUATORS)
    return (*entry, dyn_leaves)


def run_on_host(
    problem: Problem, x0, solver, max_steps: int, history: bool
) -> LoopState:
    """`_loop.run`, with the iterations driven from Python (see the module docstring).

    Each iteration is two calls of compiled functions (the loop state passed as one
    buffer per dtype, see `_pack`) and one read of a boolean from the device
    (whether to go on): 0.1–0.2 ms per evaluation on a 2-core CPU beyond the
    objective's own cost, against ~10 µs under `jax.jit`.
    """
    n = x0.size
    size = padded_size(solver.curvature, n)
    evaluate, ev_shapes, ev_def, num_fn, num_jac, dyn_leaves = _evaluator(
        problem, solver.curvature, x0, size
    )
    x0 = _pad(x0, size)
    bounded_below = problem.kind == "residual"
    state = _initial(
        _Static.of(solver, ev_def, ev_shapes, max_steps, history, bounded_below), x0
    )
    leaves, state_def = jax.tree.flatten(state)
    layout = _layout(leaves)
    # Packed and unpacked in NumPy on the host: nothing compiled for it.
    buffers = tuple(map(jax.device_put, _pack(_on_host(leaves), layout, np)))
    step_static = _Static.of(solver, state_def, layout, ev_def, num_fn, num_jac)
    limit = jnp.asarray(max_steps, jnp.int32)
    # Whether to go on is read one iteration late: the next iteration is already
    # queued on the device when the host waits for the previous one's answer, so
    # Python's dispatch overlaps the computation. The one iteration too many at the
    # end is discarded; its evaluation is given the device's answer (`going`, not
    # yet read) and skips the objective when the solve has ended, so the objective
    # runs exactly `stats["num_fn_evals"]` times, as under `jax.jit`.
    trial, going = x0, jnp.array(True)
    while True:
        ev_leaves = evaluate(dyn_leaves, trial, going)
        new_buffers, trial, going_next = _advance(
            step_static, buffers, ev_leaves, limit
        )
        if not bool(going):
            break
        buffers, going = new_buffers, going_next
    leaves = [jax.device_put(v) for v in _unpack(_on_host(buffers), layout)]
    return _cut(_finish(jax.tree.unflatten(state_def, leaves)), n)
