"""`dataset.report`: the sampler line the dataset card and the plan show."""


def test_card_sampler_line_names_eta_and_guidance_interval_only_where_they_apply():
    """The card says what the sampler did: eta only for schedulers that take one, the guided steps when the
    model guides part of the run (the embedded default: the last 3 of 8)."""
    from changeanywhere.dataset.report import _eta, _interval

    sde = {"sampler": {"num_inference_steps": 8, "eta": 1.0, "guidance_scale": 2.0},
           "info": {"scheduler_takes_eta": False, "guidance_interval": [0.625, 1.0]}}
    assert _eta(sde) == "" and _interval(sde) == " on steps 6–8 of 8 (guidance interval 0.625–1)"
    ddim = {"sampler": {"num_inference_steps": 20, "eta": 0.5, "guidance_scale": 2.0},
            "info": {"scheduler_takes_eta": True, "guidance_interval": [0, 1]}}
    assert _eta(ddim) == " eta 0.5," and _interval(ddim) == ""
    unguided = {"sampler": {"num_inference_steps": 8, "guidance_scale": 1.0}, "info": sde["info"]}
    assert _interval(unguided) == ""
    assert _interval({"sampler": {"num_inference_steps": 8, "guidance_scale": 2.0},
                      "info": {"guidance_interval": [0.0, 0.1]}}) == \
        " on no step of 8 (guidance interval 0–0.1)"
