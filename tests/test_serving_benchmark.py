"""benchmarks.serving end to end at its smallest: two photos, two requests per measurement, one
gunicorn worker. It keeps the code running; its timings are not asserted."""
import json

from benchmarks import serving


def test_the_serving_benchmark_measures_every_path(tmp_path, trained_model_dir, backbone_weights, capsys):
    out = tmp_path / "serving.json"
    serving.main(["--backbones", "small", "--model-small", str(trained_model_dir), "--weights-small",
                  backbone_weights, "--requests", "2", "--concurrency", "2", "--photos", "2", "--workers", "1",
                  "--json", str(out)])
    result = json.loads(out.read_text())["backbones"]["small"]
    assert result["http"]["statuses"] == [201]  # every upload was answered, none refused
    for figure in (result["limit"]["ms"], result["limit"]["localise_ms"], result["in_process"]["ms"],
                   result["http"]["c1_p50_ms"], result["http"]["c2_rps"], result["in_process"]["features_ms"],
                   result["first_answer_s"]):
        assert figure > 0
    assert result["http"]["uploads"] >= serving.UPLOADS_BEFORE_RSS and len(result["http"]["worker_rss_mb"]) == 1
    assert result["targets"]["c1_over_limit_target"] == serving.C1_TARGET
    table = capsys.readouterr().out
    assert "| HTTP, concurrency 2, requests/s (p50 ms) |" in table
    assert "| in-process `Predictor.predict`, ms |" in table
    assert "| each worker's RSS after the uploads, MB (target) |" in table


def test_photos_are_phone_sized_jpegs(tmp_path):
    from PIL import Image
    import io

    [photo] = serving.photos(tmp_path, 1)
    img = Image.open(io.BytesIO(photo))
    assert (img.format, img.size) == ("JPEG", (3000, 4000))
    assert 300_000 < len(photo) < 3_000_000
