"""exec and console: the box's command runs where and how the user expects."""
import os
import signal
import subprocess
import sys

import pytest

from zomg import boxes


@pytest.fixture
def box(zomg):
    assert zomg("box", "create", "dev", "--env", "BOX_VAR=from-box", "--env", "SHARED=box").code == 0
    return boxes.get("dev")


def test_exec_runs_the_command_in_the_workspace_with_the_box_env(zomg, box, fp):
    recorder = fp.register(["make", "test", "--", "-k"], returncode=0)
    r = zomg("exec", "dev", "--env", "SHARED=cli", "--", "make", "test", "--", "-k")
    assert r.code == 0
    (call,) = recorder.calls
    assert call.kwargs["cwd"] == os.path.realpath(box.workspace)
    env = call.kwargs["env"]
    assert env["BOX_VAR"] == "from-box"
    assert env["SHARED"] == "cli", "--env on exec wins over the box's own"
    assert env["ZOMG_BOX"] == "dev"
    assert env["HOME"] == os.environ["HOME"], "the user's environment is inherited"
    assert call.kwargs.get("shell") in (None, False)


@pytest.mark.parametrize("code", [1, 3, 42, 255])
def test_exec_exits_with_the_childs_code(zomg, box, fp, code):
    fp.register(["false"], returncode=code)
    assert zomg("exec", "dev", "--", "false").code == code


def test_exec_child_killed_by_a_signal_reports_128_plus_n(zomg, box, fp):
    fp.register(["crash"], returncode=-signal.SIGKILL)
    assert zomg("exec", "dev", "--", "crash").code == 128 + signal.SIGKILL


def test_exec_workdir_inside_the_workspace(zomg, box, fp):
    os.makedirs(os.path.join(box.workspace, "src", "app"))
    recorder = fp.register(["pwd"])
    assert zomg("exec", "dev", "--workdir", "src/app", "--", "pwd").code == 0
    assert recorder.calls[0].kwargs["cwd"] == os.path.realpath(os.path.join(box.workspace, "src", "app"))


@pytest.mark.parametrize(
    "workdir,message", [("../..", "outside"), ("/etc", "outside"), ("missing", "no such directory")]
)
def test_exec_bad_workdir(zomg, box, fp, workdir, message):
    r = zomg("exec", "dev", "--workdir", workdir, "--", "pwd")
    assert r.code == 2, "an unusable --workdir is a usage error, whichever way it is unusable"
    assert message in r.err and r.err.count("\n") == 1
    assert "the workspace of box 'dev'" in r.err and "''" not in r.err
    assert len(fp.calls) == 0


def test_exec_without_a_command_is_a_usage_error(zomg, box, fp):
    for argv in (["exec", "dev"], ["exec", "dev", "--"]):
        r = zomg(*argv)
        assert r.code == 2 and "missing the command" in r.err
    assert len(fp.calls) == 0


def test_exec_command_given_without_double_dash_gets_a_hint(zomg, box, fp):
    r = zomg("exec", "dev", "ls", "-la")
    assert r.code == 2 and "goes after '--'" in r.err


def test_exec_arguments_after_double_dash_are_never_parsed_as_options(zomg, box, fp):
    recorder = fp.register(["tool", "--help", "--version", "--env", "X=1"])
    assert zomg("exec", "dev", "--", "tool", "--help", "--version", "--env", "X=1").code == 0
    assert len(recorder.calls) == 1


def test_exec_records_that_the_box_was_used(zomg, box, fp):
    fp.register(["true"])
    assert box.last_used() is None
    zomg("exec", "dev", "--", "true")
    assert box.last_used() is not None


def test_exec_missing_program_is_127_one_line(zomg, box):
    r = zomg("exec", "dev", "--", "zomg-no-such-program-anywhere")
    assert r.code == 127
    assert r.err == "zomg: error: command not found: zomg-no-such-program-anywhere\n"


def test_exec_non_executable_file_is_126(zomg, box):
    script = os.path.join(box.workspace, "script.sh")
    with open(script, "w") as f:
        f.write("echo hi\n")
    os.chmod(script, 0o644)
    r = zomg("exec", "dev", "--", "./script.sh")
    assert r.code == 126 and r.err.startswith("zomg: error: permission denied")


def test_console_runs_the_users_shell_in_the_workspace(zomg, box, fp, monkeypatch):
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    recorder = fp.register(["/usr/bin/zsh"], returncode=7)
    assert zomg("console", "dev").code == 7
    assert recorder.calls[0].kwargs["cwd"] == os.path.realpath(box.workspace)
    assert recorder.calls[0].kwargs["env"]["BOX_VAR"] == "from-box"


def test_console_shell_option_and_sh_fallback(zomg, box, fp, monkeypatch):
    fp.register(["/bin/bash"])
    assert zomg("console", "dev", "--shell", "/bin/bash").code == 0
    monkeypatch.delenv("SHELL", raising=False)
    fallback = fp.register(["/bin/sh"])
    assert zomg("console", "dev").code == 0
    assert len(fallback.calls) == 1


def _installed_zomg(*argv):
    return [sys.executable, "-m", "zomg", *argv]


def test_real_exec_passes_output_and_exit_code_through(tmp_path):
    env = dict(os.environ)
    subprocess.run(_installed_zomg("box", "create", "real"), env=env, check=True, capture_output=True)
    proc = subprocess.run(
        _installed_zomg("exec", "real", "--", sys.executable, "-c",
                        "import os, sys; print(os.getcwd()); print(os.environ['ZOMG_BOX']); sys.exit(5)"),
        env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 5
    cwd, name = proc.stdout.splitlines()
    assert cwd.endswith(os.path.join("boxes", "real", "workspace")) and name == "real"
    assert proc.stderr == ""


def _default_sigint() -> None:
    # A job started in the background by a non-interactive shell inherits SIGINT
    # ignored, and so would zomg and its child: give them what a terminal's
    # foreground job has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_exec(child_code, box):
    """Run `zomg exec BOX -- python -c CHILD`, SIGINT zomg's whole process group once the child
    is ready (what Ctrl-C at a terminal does), and return (zomg's exit code, stderr)."""
    subprocess.run(_installed_zomg("box", "create", box), check=True, capture_output=True)
    proc = subprocess.Popen(_installed_zomg("exec", box, "--", sys.executable, "-c", child_code),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint)
    assert proc.stdout.readline() == "ready\n"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate()
    return proc.returncode, err


def test_real_interrupt_reaches_the_child_and_zomg_exits_130_when_it_kills_the_child(tmp_path):
    """SIGINT sent to zomg alone (not from a terminal) is passed on to the child."""
    subprocess.run(_installed_zomg("box", "create", "sig"), check=True, capture_output=True)
    marker = tmp_path / "child-got-sigint"
    child = (
        "import os, signal, sys, time, pathlib\n"
        "def h(*a):\n"
        f"    pathlib.Path({str(marker)!r}).write_text('yes')\n"
        "    signal.signal(signal.SIGINT, signal.SIG_DFL); os.kill(os.getpid(), signal.SIGINT)\n"
        "signal.signal(signal.SIGINT, h)\n"
        "print('ready', flush=True)\n"
        # Short sleeps: a signal that lands just before a long sleep starts would wait for its end.
        "for _ in range(1200): time.sleep(0.05)\n"
    )
    proc = subprocess.Popen(_installed_zomg("exec", "sig", "--", sys.executable, "-c", child),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, "the child died of SIGINT: 128 + 2, as a shell says"
    assert marker.read_text() == "yes"
    assert "Traceback" not in err


def test_a_signal_that_comes_while_the_child_is_being_started_is_passed_on_to_it():
    # SIGTERM reaches zomg just as it starts the child (made certain here by sending it
    # from inside Popen): the child must get it and zomg must report it, not die first.
    subprocess.run(_installed_zomg("box", "create", "early"), check=True, capture_output=True)
    program = ("import os, signal, subprocess, sys\n"
               "real = subprocess.Popen.__init__\n"
               "def starting(self, *args, **kwargs):\n"
               "    os.kill(os.getpid(), signal.SIGTERM)\n"
               "    real(self, *args, **kwargs)\n"
               "subprocess.Popen.__init__ = starting\n"
               "from zomg.cli import main\n"
               "sys.exit(main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", program, "exec", "early", "--", sys.executable, "-c",
                           "import time; time.sleep(60)"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143, "the child died of SIGTERM: 128 + 15, as a shell says"
    assert done.stderr == ""


def test_a_child_that_handles_ctrl_c_and_exits_gives_its_own_code():
    # The child waits for SIGINT itself (no sleeping), then exits 5 as `trap "" INT; ...; exit 5` would.
    child = ("import signal, sys\n"
             "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n"
             "print('ready', flush=True)\n"
             "signal.sigwait({signal.SIGINT})\n"
             "sys.exit(5)\n")
    code, err = _interrupt_exec(child, "trapper")
    assert code == 5
    assert err == ""


def test_a_child_killed_by_ctrl_c_gives_130():
    # Short sleeps: a signal that lands just before a long sleep starts would wait for its end.
    child = "import time\nprint('ready', flush=True)\nfor _ in range(1200): time.sleep(0.05)\n"
    code, err = _interrupt_exec(child, "plain")
    assert code == 130
    assert "zomg" not in err, "the child's own KeyboardInterrupt report is all there is"


def test_exec_and_console_set_pwd_to_where_the_child_runs(zomg, box, fp, tmp_path, monkeypatch):
    caller = tmp_path / "caller"
    caller.mkdir()
    monkeypatch.chdir(caller)
    monkeypatch.setenv("PWD", str(caller))
    os.makedirs(os.path.join(box.workspace, "src"))
    exec_call = fp.register(["make"])
    console_call = fp.register(["/bin/sh"])
    assert zomg("exec", "dev", "--workdir", "src", "--", "make").code == 0
    assert zomg("console", "dev", "--shell", "/bin/sh").code == 0
    exec_env = exec_call.calls[0].kwargs["env"]
    assert exec_env["PWD"] == exec_call.calls[0].kwargs["cwd"] == os.path.realpath(os.path.join(box.workspace, "src"))
    console_env = console_call.calls[0].kwargs["env"]
    assert console_env["PWD"] == os.path.realpath(box.workspace)
    assert exec_env["OLDPWD"] == console_env["OLDPWD"] == os.getcwd(), "`cd -` goes back to the caller"
    assert console_env["ZOMG_BOX"] == "dev"


def test_real_exec_pwd_is_the_workspace_not_the_callers_directory(tmp_path):
    subprocess.run(_installed_zomg("box", "create", "pwd"), check=True, capture_output=True)
    proc = subprocess.run(
        _installed_zomg("exec", "pwd", "--", sys.executable, "-c",
                        "import os; print(os.environ['PWD']); print(os.getcwd())"),
        capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ, PWD=str(tmp_path)))
    pwd, cwd = proc.stdout.splitlines()
    assert pwd == cwd and cwd.endswith(os.path.join("boxes", "pwd", "workspace"))


@pytest.mark.parametrize("argv", [["exec", "dev", "--", "pwd"], ["console", "dev"],
                                  ["exec", "dev", "--workdir", "src", "--", "pwd"]])
@pytest.mark.parametrize("how", ["deleted", "replaced by a file"])
def test_a_box_whose_workspace_is_gone_says_so_and_runs_nothing(zomg, box, fp, argv, how):
    import shutil

    shutil.rmtree(box.workspace)
    if how != "deleted":
        with open(box.workspace, "w") as f:
            f.write("not a directory")
    r = zomg(*argv)
    assert r.code == 1, "damage, like damaged metadata: exit 1"
    what = "is missing" if how == "deleted" else "is not a directory"
    assert r.err == (f"zomg: error: box 'dev': its workspace {what} ({box.workspace}); "
                     "remove it with: zomg box rm --force dev\n")
    assert len(fp.calls) == 0


def test_box_list_and_show_flag_a_missing_workspace(zomg, box):
    import shutil

    assert zomg("box", "create", "fine").code == 0
    shutil.rmtree(box.workspace)
    listed = zomg("box", "list")
    assert listed.code == 1
    assert [line.split()[0] for line in listed.out.splitlines()[1:]] == ["dev", "fine"], "still listed"
    assert listed.err == (f"zomg: error: box 'dev': its workspace is missing ({box.workspace}); "
                          "remove it with: zomg box rm --force dev\n")
    shown = zomg("box", "show", "dev")
    assert shown.code == 1 and f"{box.workspace} (damaged)" in shown.out
    assert "its workspace is missing" in shown.err
    assert zomg("box", "rm", "--force", "dev").code == 0
    assert zomg("box", "list").code == 0


def test_console_banner_only_when_stderr_is_a_terminal(zomg, box, fp, monkeypatch):
    fp.register(["/bin/sh"])
    fp.register(["/bin/sh"])
    quiet = zomg("console", "dev", "--shell", "/bin/sh")
    assert (quiet.code, quiet.err) == (0, ""), "a script's stderr gets nothing from zomg"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    shown = zomg("console", "dev", "--shell", "/bin/sh")
    assert shown.code == 0
    assert shown.err == f"zomg: inside box 'dev' ({os.path.realpath(box.workspace)}); exit the shell to leave\n"


def test_a_workspace_removed_after_the_check_is_still_named_not_the_command(zomg, box, monkeypatch):
    import shutil

    from zomg import process

    real_run = process.run

    def remove_then_run(argv, cwd, env):
        shutil.rmtree(box.workspace)
        return real_run(argv, cwd, env)

    monkeypatch.setattr(process, "run", remove_then_run)
    r = zomg("exec", "dev", "--", "true")
    assert r.code == 1 and "its workspace is missing" in r.err and "command not found" not in r.err
