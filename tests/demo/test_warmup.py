"""`demo.warmup`: one small generation before the first request."""



from changeanywhere import demo


def test_warm_up_runs_one_small_generation(models):
    assert demo.warm_up(models, size=32) > 0
    assert demo.warm_up(demo.Models(None, None, models.class_set, "none", "cva")) == 0
