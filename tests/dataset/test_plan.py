"""`dataset.plan` and `changeanywhere.seeds`: the samples of a run shared among ranks and batches, seeds independent of
both."""

from changeanywhere.dataset import make_plan
from changeanywhere.seeds import derive_seed, sample_seed


def test_seeds_and_plan_are_independent_of_ranks_and_batches():
    assert sample_seed(0, 5) == sample_seed(0, 5) != sample_seed(1, 5) != sample_seed(0, 6)
    assert 0 <= derive_seed(2**40, 7) < 2**63
    done = [0, 1, 2, 3, 9, 17]
    for world in (1, 2, 3, 4):
        plan = make_plan(21, 4, done, world)
        made = [i for share in plan.shares for i in plan.to_make(share)]
        assert sorted(made) == sorted(set(range(21)) - set(done))  # no duplicates, no gaps
        assert plan.pending == [1, 2, 3, 4, 5] and sorted(sum(plan.shares, [])) == plan.pending
