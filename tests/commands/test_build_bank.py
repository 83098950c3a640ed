"""`changeanywhere build-bank`: a bank from image and label folders, the val split left out, an empty split refused."""



from changeanywhere.bank import ObjectBank
from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from tests.helpers import town_folders

DUBAI = ClassSet.builtin("dubai-landcover")
LAND, WATER, BUILDING, VEGETATION, ROAD = range(5)


def test_build_bank_command(tmp_path, capsys):
    data = town_folders(tmp_path / "data", n=3)
    args = ["build-bank", "--images", str(data / "images"), "--labels", str(data / "labels"), "--classes",
            "dubai-landcover", "--out", str(tmp_path / "bank"), "--split", "train", "--val-pattern", "tile2_*"]
    assert main(args) == 0
    bank = ObjectBank.load(tmp_path / "bank")
    assert {i.source for i in bank.instances} == {"tile0_001.png", "tile1_001.png"}  # the val tile stays out
    assert "building" in capsys.readouterr().out
    assert main([*args[:-2], "--val-pattern", "*"]) == 2  # an empty split: a one-line error
    assert "empty" in capsys.readouterr().err
