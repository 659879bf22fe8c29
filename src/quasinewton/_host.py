"""The loop driven from Python, for solves called outside any JAX transformation.

A solve under `jax.jit` compiles the objective and the solver's logic into one
program: the best choice for repeated or batched solves, but the solver's logic
(line search, model update, tests: most of the program) is compiled again for
every new objective, 0.5–1 s on a CPU. Called eagerly, as one calls SciPy, the
same iterations run as two compiled functions called in turn from Python:

- the evaluation of the objective (and what the model needs of it) at the trial
  point, compiled for this objective;
- `_loop.advance`, which does not depend on the objective, compiled once per
  solver, dtype and shape and reused by every later solve, whatever its objective.

Both paths run `_loop.advance` on the same evaluations, so they take the same
iterations up to the rounding of fused arithmetic.
"""

import collections
import functools
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ._loop import LoopState, advance, finish, initial_state, keep_going
from ._problem import Problem


class _Static:
    """Static arguments of a cached compiled function, hashed once."""

    def __init__(self, *items):
        self.items = items
        self._hash = hash(items)

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, _Static) and (self is other or self.items == other.items)


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


def _fill(shape: jax.ShapeDtypeStruct):
    value = jnp.nan if jnp.issubdtype(shape.dtype, jnp.inexact) else 0
    return jnp.full(shape.shape, value, shape.dtype)


@functools.partial(jax.jit, static_argnums=0)
def _initial(static: _Static, x0):
    solver, ev_def, ev_shapes, max_steps, history = static.items
    placeholder = jax.tree.unflatten(ev_def, [_fill(s) for s in ev_shapes])
    return initial_state(solver, placeholder, x0, max_steps, history)


@functools.partial(jax.jit, static_argnums=0)
def _advance(static: _Static, state_leaves, ev_leaves, max_steps):
    solver, state_def, ev_def, num_fn, num_jac = static.items
    state = jax.tree.unflatten(state_def, state_leaves)
    evaluation = jax.tree.unflatten(ev_def, ev_leaves)
    new = advance(solver, None, state, (evaluation, None, num_fn, num_jac))
    return jax.tree.leaves(new), new.trial, keep_going(new, max_steps)


@jax.jit
def _finish(state: LoopState) -> LoopState:
    return finish(state)


#: Compiled evaluations of recent problems (least recently used first), so that
#: solving the same function again compiles nothing.
_EVALUATORS: "collections.OrderedDict[Any, tuple]" = collections.OrderedDict()
_MAX_EVALUATORS = 32


def _frozen(flat):
    """A flattened pytree `(leaves, treedef)` as a hashable pair."""
    leaves, treedef = flat
    return tuple(leaves), treedef


def _key(problem: Problem, curvature, dyn_leaves):
    """What identifies a problem up to the values of its arrays, or `None`: the
    program of the user's function (its closure-converted jaxpr, as text: literals
    included, closed-over arrays not; or, for a function that closes over nothing,
    the function object), the structure of its inputs and outputs, and the layout
    of its arrays. Two problems with the same key are the same function
    of different array values, so one compiled evaluation serves both."""
    fn = problem.fn
    try:
        if hasattr(fn, "jaxpr"):
            program = (str(fn.jaxpr), _frozen(fn.out_dynamic_struct), _frozen(fn.out_static))
        else:
            # A plain function without a closure, kept as it is (as `jax.jit` would
            # key it: by the function object).
            program = (fn.fn,)
        key = (
            program,
            _frozen(fn.in_dynamic_struct),
            _frozen(fn.in_static),
            problem.kind,
            problem.has_aux,
            curvature,
            # Not the tree structure of `dyn_leaves`: it holds `problem.unravel`, a
            # new function for every solve; the structures above determine it.
            tuple((leaf.shape, leaf.dtype) for leaf in dyn_leaves),
        )
        hash(key)
    except (AttributeError, TypeError):
        return None
    return key


def _evaluator(problem: Problem, curvature, x0):
    """The compiled evaluation at a trial point for this problem and model, with the
    structure of its output, its evaluation counts and the problem's arrays."""
    dynamic, static = eqx.partition(problem, eqx.is_array)
    dyn_leaves, dyn_def = jax.tree.flatten(dynamic)
    key = _key(problem, curvature, dyn_leaves)
    if key is not None:
        if key in _EVALUATORS:
            _EVALUATORS.move_to_end(key)
            return (*_EVALUATORS[key], dyn_leaves)
    counts = []

    def evaluation_at(x):
        evaluation, _, num_fn, num_jac = curvature.evaluate(problem, x)
        counts.append((num_fn, num_jac))
        return evaluation

    ev_shapes, ev_def = jax.tree.flatten(jax.eval_shape(evaluation_at, x0))
    num_fn, num_jac = counts[0]

    @jax.jit
    def evaluate(dyn_leaves, x):
        problem = eqx.combine(jax.tree.unflatten(dyn_def, dyn_leaves), static)
        return jax.tree.leaves(curvature.evaluate(problem, x)[0])

    entry = (evaluate, tuple(ev_shapes), ev_def, num_fn, num_jac)
    if key is not None:
        _EVALUATORS[key] = entry
        while len(_EVALUATORS) > _MAX_EVALUATORS:
            _EVALUATORS.popitem(last=False)
    return (*entry, dyn_leaves)


def run_on_host(problem: Problem, solver, x0, max_steps: int, history: bool) -> LoopState:
    """`_loop.run`, with the iterations driven from Python (see the module docstring).

    Each iteration is two calls of compiled functions and one read of a boolean
    from the device (whether to go on): ~0.1 ms of overhead per evaluation, which
    a jitted solve does not pay.
    """
    evaluate, ev_shapes, ev_def, num_fn, num_jac, dyn_leaves = _evaluator(problem, solver.curvature, x0)
    state = _initial(_Static(solver, ev_def, ev_shapes, max_steps, history), x0)
    leaves, state_def = jax.tree.flatten(state)
    step_static = _Static(solver, state_def, ev_def, num_fn, num_jac)
    limit = jnp.asarray(max_steps, jnp.int32)
    trial, going = x0, True
    while going:
        ev_leaves = evaluate(dyn_leaves, trial)
        leaves, trial, going = _advance(step_static, leaves, ev_leaves, limit)
        going = bool(going)
    return _finish(jax.tree.unflatten(state_def, leaves))
