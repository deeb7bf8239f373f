"""Prerequisite graphs: validation and traversal.

Pure Python (no Django), so the course-package validator, the importers, the
scheduling policies and the benchmarks all use the same code. A graph is given as
an iterable of ``(prerequisite, skill)`` edges over hashable node ids.
"""

from collections import defaultdict, deque
from collections.abc import Hashable, Iterable

Edge = tuple[Hashable, Hashable]


class CycleError(ValueError):
    """The edges contain a cycle; ``cycle`` lists it, first node repeated at the end."""

    def __init__(self, cycle: list):
        self.cycle = cycle
        super().__init__("prerequisite cycle: " + " -> ".join(str(n) for n in cycle))


def _successors(edges: Iterable[Edge]) -> dict:
    succ = defaultdict(list)
    for before, after in edges:
        succ[before].append(after)
    return succ


def find_cycle(nodes: Iterable[Hashable], edges: Iterable[Edge]) -> list | None:
    """Return one cycle as ``[a, b, ..., a]`` or ``None`` when the graph is a DAG."""
    succ = _successors(edges)
    all_nodes = list(dict.fromkeys([*nodes, *succ, *(n for vs in succ.values() for n in vs)]))
    state = dict.fromkeys(all_nodes, 0)  # 0 unvisited, 1 on the stack, 2 done
    for root in all_nodes:
        if state[root]:
            continue
        path, iters = [root], [iter(succ[root])]
        state[root] = 1
        while path:
            child = next(iters[-1], None)
            if child is None:
                state[path.pop()] = 2
                iters.pop()
            elif state[child] == 1:
                return path[path.index(child):] + [child]
            elif state[child] == 0:
                state[child] = 1
                path.append(child)
                iters.append(iter(succ[child]))
    return None


def topological_order(nodes: Iterable[Hashable], edges: Iterable[Edge]) -> list:
    """Nodes with every prerequisite before its dependants; ties keep the input order.

    Raises ``CycleError`` naming a cycle when there is one.
    """
    edges = list(edges)
    nodes = list(dict.fromkeys([*nodes, *(n for e in edges for n in e)]))
    position = {n: i for i, n in enumerate(nodes)}
    indegree = dict.fromkeys(nodes, 0)
    succ = _successors(edges)
    for _, after in edges:
        indegree[after] += 1
    ready = deque(n for n in nodes if indegree[n] == 0)
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for child in sorted(succ[node], key=position.__getitem__):
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) < len(nodes):
        raise CycleError(find_cycle(nodes, edges))
    return order


def ancestors(node: Hashable, edges: Iterable[Edge]) -> set:
    """Every direct or indirect prerequisite of ``node``."""
    preds = defaultdict(list)
    for before, after in edges:
        preds[after].append(before)
    seen, stack = set(), [node]
    while stack:
        for parent in preds[stack.pop()]:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def frontier(nodes: Iterable[Hashable], edges: Iterable[Edge], mastered: set) -> list:
    """Unmastered nodes whose direct prerequisites are all mastered, in input order."""
    preds = defaultdict(set)
    for before, after in edges:
        preds[after].add(before)
    return [n for n in nodes if n not in mastered and preds[n] <= mastered]
