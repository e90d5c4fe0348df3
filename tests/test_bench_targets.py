"""bench/quant_speed.py's verdict lines on issue #25's targets: from the run's own figures, met only at the target."""
import importlib.util

from lab.paths import ROOT


def _quant_speed():
    spec = importlib.util.spec_from_file_location("quant_speed", ROOT / "bench" / "quant_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quant_speed_targets_say_met_only_at_or_above_each_target():
    q = _quant_speed()
    eng = [{"quantization": "bf16", "decode_b64_tok_s": 1000.0, "prefill_4096_s": 0.15},
           {"quantization": "fp8", "decode_b64_tok_s": 1400.0, "prefill_4096_s": 0.1001}]
    gemms = [{"m": m, "bf16_s": 1.3, "int8_mma_s": 1.0} for m in (16, 32, 64)] + [{"m": 1, "bf16_s": 1.0,
                                                                                 "int8_mma_s": 2.0}]
    lines = q.targets({"engine": eng, "gemms": gemms})
    assert lines[0].endswith("1.40x met") and "1.50x NOT met" in lines[1]
    assert "3 of 3 cells" in lines[2] and lines[2].endswith(" met")
    gemms[1]["int8_mma_s"] = 1.01
    assert q.targets({"gemms": gemms}) == [
        "target INT8 W8A16 >= 1.3x cuBLAS bf16 at M=16-64: 2 of 3 cells (1.29-1.30x) NOT met"]
    assert q.targets({}) == []
