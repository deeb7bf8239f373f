import pytest

from knowledge.graph import CycleError, ancestors, find_cycle, frontier, topological_order

EDGES = [("add", "multiply"), ("multiply", "equations"), ("add", "fractions"), ("fractions", "equations")]


def test_topological_order_puts_prerequisites_first_and_keeps_input_order_for_ties():
    order = topological_order(["equations", "fractions", "multiply", "add"], EDGES)
    assert order == ["add", "fractions", "multiply", "equations"]


def test_a_cycle_is_named_with_its_path():
    with pytest.raises(CycleError) as error:
        topological_order(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert str(error.value) == "prerequisite cycle: a -> b -> c -> a"
    assert find_cycle(["x"], [("x", "x")]) == ["x", "x"]
    assert find_cycle(["a"], EDGES) is None


def test_ancestors_and_frontier():
    assert ancestors("equations", EDGES) == {"add", "multiply", "fractions"}
    nodes = ["add", "multiply", "fractions", "equations"]
    assert frontier(nodes, EDGES, mastered={"add"}) == ["multiply", "fractions"]
    assert frontier(nodes, EDGES, mastered={"add", "multiply"}) == ["fractions"]
