"""`zomg setup` and the deployment-metrics opt-in."""
import json
import os
import select
import subprocess
import sys

import pytest

from zomg import boxes, paths, setup_config
from zomg.telemetry import deployment, schema
from zomg.telemetry.deployment import metrics


def _answers():
    with open(setup_config.path()) as f:
        return json.load(f)


def test_without_a_terminal_it_never_asks_and_metrics_stay_off(zomg, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    r = zomg("setup")
    assert r.code == 0
    assert "?" not in r.out, "no question may be asked without a terminal"
    assert _answers()["deployment_metrics"] is False
    assert _answers()["deployment_id"] is None


def test_flags_set_answers_and_metrics_need_the_explicit_flag(zomg, tmp_path):
    r = zomg("setup", "--no-input", "--boxes-dir", str(tmp_path / "b"), "--deployment-name", "lab-3")
    assert r.code == 0
    answers = _answers()
    assert answers["boxes_dir"] == str(tmp_path / "b")
    assert answers["deployment_name"] == "lab-3"
    assert answers["deployment_metrics"] is False
    assert zomg("box", "create", "x").code == 0
    assert os.path.isdir(tmp_path / "b" / "x" / "workspace"), "boxes live where setup said"
    assert boxes.root() == str(tmp_path / "b")


def test_opting_in_creates_a_deployment_id_and_opting_out_deletes_it(zomg):
    assert zomg("setup", "--no-input", "--deployment-metrics", "on").code == 0
    first = _answers()["deployment_id"]
    assert schema._check_uuid(first) is None
    assert zomg("setup", "--no-input").code == 0
    assert _answers()["deployment_id"] == first, "re-running setup keeps the id while metrics stay on"
    assert zomg("setup", "--no-input", "--deployment-metrics", "off").code == 0
    assert _answers()["deployment_id"] is None
    assert zomg("setup", "--no-input", "--deployment-metrics", "on").code == 0
    assert _answers()["deployment_id"] not in (None, first), "a new opt-in is a new, unlinkable id"


def test_the_setup_file_is_private(zomg):
    zomg("setup", "--no-input")
    assert os.stat(setup_config.path()).st_mode & 0o777 == 0o600


def test_show_prints_answers_and_the_exact_payload(zomg):
    zomg("setup", "--no-input", "--deployment-metrics", "on")
    r = zomg("setup", "--show")
    assert r.code == 0
    payload_line = [line for line in r.out.splitlines() if line.startswith('{"events"')]
    (line,) = payload_line
    body = json.loads(line)
    schema.validate_batch(body)
    (event,) = body["events"]
    assert event["deployment_id"] == _answers()["deployment_id"]
    assert line == schema.encode_batch([event]).decode(), "shown in the exact wire format"


def test_show_changes_nothing(zomg):
    zomg("setup", "--show")
    assert not os.path.exists(setup_config.path())


def test_bad_answers_are_one_line_errors(zomg):
    r = zomg("setup", "--no-input", "--deployment-metrics", "maybe")
    assert r.code == 2 and r.err.count("\n") == 1
    r = zomg("setup", "--no-input", "--deployment-name", "Not A Name")
    assert r.code == 2 and "invalid deployment name" in r.err


def test_a_damaged_setup_file_is_named_and_kept(zomg):
    os.makedirs(paths.config_dir())
    with open(setup_config.path(), "w") as f:
        f.write("{oops")
    r = zomg("box", "list")
    assert r.code == 1 and setup_config.path() in r.err and r.err.count("\n") == 1
    with open(setup_config.path()) as f:
        assert f.read() == "{oops"


def test_payload_key_set_is_exact_and_shares_no_key_with_cli_events():
    event = metrics.build("00000000-0000-4000-8000-000000000000", deployment.now())
    assert list(event) == list(schema.field_names(schema.DEPLOYMENT_METRICS))
    assert set(event) == {
        "event", "schema_version", "event_id", "deployment_id", "timestamp", "cli_version", "os", "arch",
        "cpu_bucket", "memory_bucket", "active_boxes_bucket", "storage_used_bucket", "box_bytes_bucket",
    }
    cli_fields = set(schema.field_names(schema.CLI_COMMAND))
    assert "installation_id" not in event and "deployment_id" not in cli_fields


@pytest.mark.parametrize(
    "value,edges,expected",
    [(1, "cpu", "1"), (3, "cpu", "3-4"), (64, "cpu", "17-64"), (65, "cpu", ">64"), (0, "active", "0"),
     (7, "active", "6-20"), (101, "active", ">100"), (0.0, "share", "<=10%"), (0.95, "share", ">90%")],
)
def test_buckets(value, edges, expected):
    fn = {"cpu": metrics.cpu_bucket, "active": metrics.active_boxes_bucket,
          "share": metrics.storage_share_bucket}[edges]
    assert fn(value) == expected


def test_active_boxes_counts_only_boxes_used_in_the_last_7_days(zomg, fp):
    import time

    from zomg import boxes

    for name in ("old", "recent", "never"):
        zomg("box", "create", name)
    fp.register(["true"], occurrences=2)
    zomg("exec", "old", "--", "true")
    zomg("exec", "recent", "--", "true")
    now = time.time()
    stamp = os.path.join(boxes.get("old").path, boxes.USED_STAMP)
    os.utime(stamp, (now - 8 * 24 * 3600, now - 8 * 24 * 3600))
    assert metrics.measure(now)["active_boxes_bucket"] == "1"


def test_box_bytes_walk_is_bounded(tmp_path):
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(b"x" * 10)
    assert metrics.disk_usage(str(tmp_path), limit=3) is None
    assert metrics.disk_usage(str(tmp_path)) > 0


@pytest.mark.parametrize(
    "env,expected",
    [({}, "on"), ({"DO_NOT_TRACK": "1"}, "off"), ({"ZOMG_TELEMETRY": "off"}, "off"),
     ({"ZOMG_TELEMETRY": "bogus"}, "off"), ({"ZOMG_TELEMETRY": "log"}, "log"), ({"ZOMG_TELEMETRY": "on"}, "on")],
)
def test_environment_overrides_apply_to_deployment_metrics(zomg, env, expected):
    zomg("setup", "--no-input", "--deployment-metrics", "on")
    assert deployment.decide(env)[0] == expected


def test_a_packager_lock_turns_deployment_metrics_off(zomg):
    zomg("setup", "--no-input", "--deployment-metrics", "on")
    system = paths.system_config_dirs()[0]
    os.makedirs(system)
    with open(os.path.join(system, "telemetry.json"), "w") as f:
        json.dump({"mode": "off", "locked": True}, f)
    mode, reason = deployment.decide({})
    assert mode == "off" and "locks" in reason


def test_without_opt_in_deployment_metrics_are_off_even_with_telemetry_on(zomg):
    assert deployment.decide({"ZOMG_TELEMETRY": "on"})[0] == "off"


# --- the prompt, through a real pseudo-terminal ------------------------------------


def _drive(answers, home_env):
    """Run `zomg setup` on a pty, answering each prompt in turn; return (exit code, transcript)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "zomg", "setup"], stdin=slave, stdout=slave, stderr=slave,
                            env=home_env, close_fds=True)
    os.close(slave)
    transcript = b""
    pending = list(answers)
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            transcript += chunk
            if pending and transcript.rstrip().endswith(b"]:"):
                os.write(master, pending.pop(0).encode() + b"\n")
    finally:
        os.close(master)
    return proc.wait(timeout=30), transcript.decode(errors="replace")


def test_prompt_on_a_terminal_defaults_to_no_when_enter_is_pressed():
    code, transcript = _drive(["", "", ""], dict(os.environ))
    assert code == 0, transcript
    assert "Where should boxes live?" in transcript
    assert "Send deployment metrics? (now off) [y/N]" in transcript
    assert '{"events":[{"event":"deployment.metrics"' in transcript, "the exact payload is shown before asking"
    assert _answers()["deployment_metrics"] is False


def test_prompt_on_a_terminal_opts_in_only_on_yes(tmp_path):
    code, transcript = _drive([str(tmp_path / "boxes"), "lab-1", "yes"], dict(os.environ))
    assert code == 0, transcript
    answers = _answers()
    assert answers["deployment_metrics"] is True
    assert answers["boxes_dir"] == str(tmp_path / "boxes")
    assert answers["deployment_name"] == "lab-1"


def test_prompt_shows_an_opt_in_and_keeps_it_when_enter_is_pressed(zomg):
    assert zomg("setup", "--no-input", "--deployment-metrics", "on").code == 0
    first = _answers()["deployment_id"]
    code, transcript = _drive(["", "", ""], dict(os.environ))
    assert code == 0, transcript
    assert "Send deployment metrics? (now on) [Y/n]" in transcript
    assert _answers()["deployment_metrics"] is True
    assert _answers()["deployment_id"] == first


def test_prompt_turns_an_opt_in_off_only_on_no(zomg):
    assert zomg("setup", "--no-input", "--deployment-metrics", "on").code == 0
    code, transcript = _drive(["", "", "n"], dict(os.environ))
    assert code == 0, transcript
    assert _answers()["deployment_metrics"] is False


def test_show_after_enter_at_the_prompt_says_off_was_chosen(zomg):
    assert "off (never chosen in zomg setup)" in zomg("setup", "--show").out
    code, transcript = _drive(["", "", ""], dict(os.environ))
    assert code == 0, transcript
    assert _answers()["deployment_metrics"] is False
    shown = zomg("setup", "--show").out
    assert "never chosen" not in shown
    assert "deployment metrics:  off (as chosen in zomg setup)" in shown


def test_the_docs_describe_both_prompts_as_they_are():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "telemetry.md"), encoding="utf-8") as f:
        text = " ".join(f.read().split())
    assert "every time" not in text
    assert "`[y/N]`" in text and "`[Y/n]`" in text


def test_an_invalid_answer_is_asked_again_and_earlier_answers_are_kept(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    answers = [str(a_file), str(tmp_path / "boxes"), "My Laptop", "lab-1", "maybe", "y"]
    code, transcript = _drive(answers, dict(os.environ))
    assert code == 0, transcript
    assert f"{a_file} is not a directory; please answer again." in transcript
    assert "invalid deployment name 'My Laptop'" in transcript and transcript.count("Deployment name") == 2
    assert "please answer y or n; please answer again." in transcript
    assert _answers()["boxes_dir"] == str(tmp_path / "boxes")
    assert _answers()["deployment_name"] == "lab-1"
    assert _answers()["deployment_metrics"] is True


def test_end_of_input_at_a_prompt_ends_setup_cleanly_and_saves_nothing(tmp_path):
    code, transcript = _drive([str(tmp_path / "boxes"), "Bad Name", "\x04"], dict(os.environ))
    assert code == 2, transcript
    assert "no answer (end of input); nothing was changed" in transcript and "Traceback" not in transcript
    assert not os.path.exists(setup_config.path())
