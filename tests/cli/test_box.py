"""The local box backend through the CLI: what a user sees and what stays on disk."""
import json
import os

import pytest

from zomg import boxes, paths


def test_create_list_show_rm_round_trip(zomg):
    assert zomg("box", "create", "web", "--project", "shop", "--env", "A=1", "--env", "B=x=y").code == 0
    assert zomg("box", "create", "db").code == 0
    listed = zomg("box", "list")
    assert listed.code == 0
    lines = listed.out.splitlines()
    assert lines[0].split() == ["NAME", "PROJECT", "CREATED"]
    assert [line.split()[:2] for line in lines[1:]] == [["db", "-"], ["web", "shop"]]
    shown = json.loads(zomg("box", "show", "web", "--json").out)
    assert shown["env"] == {"A": "1", "B": "x=y"}
    assert shown["project"] == "shop"
    assert os.path.isdir(shown["workspace"])
    assert zomg("box", "rm", "web").code == 0
    assert [b["name"] for b in json.loads(zomg("box", "list", "--json").out)] == ["db"]


def test_list_filters_by_project_and_json_is_pipeable(zomg):
    zomg("box", "create", "a", "--project", "p")
    zomg("box", "create", "b", "--project", "q")
    r = zomg("box", "list", "--project", "p", "--json")
    assert [b["name"] for b in json.loads(r.out)] == ["a"]


def test_a_project_without_boxes_says_so_not_that_there_are_no_boxes(zomg):
    zomg("box", "create", "a", "--project", "p")
    r = zomg("box", "list", "--project", "nope")
    assert (r.code, r.out) == (0, "")
    assert r.err == "no box belongs to project 'nope' (see all boxes with: zomg box list)\n"
    assert zomg("box", "list", "--project", "nope", "--json").out == "[]\n"


def test_empty_list_says_so_on_stderr_only(zomg):
    r = zomg("box", "list")
    assert (r.code, r.out) == (0, "")
    assert "zomg box create" in r.err
    assert not os.path.exists(paths.data_dir()), "listing must not create anything"


@pytest.mark.parametrize("name", ["Web", "a_b", "a" * 64, "", "a/b", "..", "é", "-x"])
def test_invalid_names_are_usage_errors(zomg, name):
    r = zomg("box", "create", "--", name)
    assert r.code == 2
    assert r.err.startswith("zomg: error: invalid box name")
    assert not os.path.exists(boxes.root()) or os.listdir(boxes.root()) == []


@pytest.mark.parametrize("assignment", ["NOEQUALS", "=v", "1A=v", "A-B=v"])
def test_invalid_env_assignments(zomg, assignment):
    r = zomg("box", "create", "x", "--env", assignment)
    assert r.code == 2 and "invalid --env" in r.err


def test_creating_an_existing_box_is_a_conflict_and_keeps_it(zomg):
    zomg("box", "create", "x", "--env", "K=original")
    r = zomg("box", "create", "x", "--env", "K=new")
    assert r.code == 1 and r.err == "zomg: error: box 'x' already exists\n"
    assert boxes.get("x").env == {"K": "original"}


def test_missing_box(zomg):
    for argv in (["box", "show", "nope"], ["box", "rm", "nope"], ["exec", "nope", "--", "true"], ["console", "nope"]):
        r = zomg(*argv)
        assert r.code == 1, argv
        assert r.err == "zomg: error: no box named 'nope' (see 'zomg box list')\n"


def test_rm_refuses_a_box_with_files_unless_forced(zomg):
    zomg("box", "create", "x")
    workspace = boxes.get("x").workspace
    with open(os.path.join(workspace, "notes.txt"), "w") as f:
        f.write("keep me")
    r = zomg("box", "rm", "x")
    assert r.code == 1 and "--force" in r.err
    assert os.path.exists(os.path.join(workspace, "notes.txt"))
    assert zomg("box", "rm", "-f", "x").code == 0
    assert not os.path.exists(workspace)
    assert os.listdir(boxes.root()) == []


@pytest.mark.parametrize("content", [
    b"{not json", b"", b"[]", b"\xff\xfe",
    b'{"name": "other", "project": null, "env": {}, "created": "x"}',
    b'{"name": "x", "project": null, "env": {"A": 1}, "created": "x"}',
])
def test_corrupt_metadata_is_one_line_and_never_rewritten(zomg, content):
    zomg("box", "create", "x")
    zomg("box", "create", "y")
    meta = os.path.join(boxes.root(), "x", "box.json")
    with open(meta, "wb") as f:
        f.write(content)
    shown = zomg("box", "show", "x")
    assert shown.code == 1
    assert shown.err == (f"zomg: error: box 'x' is damaged (corrupt metadata in {meta}); "
                         "remove it with: zomg box rm --force x\n")
    listed = zomg("box", "list")
    assert listed.code == 1
    assert "y" in listed.out, "the readable boxes are still listed"
    assert listed.err.count("\n") == 1
    with open(meta, "rb") as f:
        assert f.read() == content


def _damage(name, how):
    meta = os.path.join(boxes.root(), name, "box.json")
    if how == "missing":
        os.remove(meta)
    else:
        with open(meta, "w") as f:
            f.write("{not json")
    return meta


@pytest.mark.parametrize("how", ["missing", "corrupt"])
def test_a_damaged_box_names_the_fix_everywhere_and_rm_force_removes_it(zomg, how):
    zomg("box", "create", "broken")
    zomg("box", "create", "fine")
    with open(os.path.join(boxes.get("broken").workspace, "notes.txt"), "w") as f:
        f.write("x")
    _damage("broken", how)
    fix = "remove it with: zomg box rm --force broken"
    for argv in (["box", "show", "broken"], ["box", "create", "broken"], ["box", "rm", "broken"],
                 ["box", "list"], ["exec", "broken", "--", "true"]):
        r = zomg(*argv)
        assert r.code == 1, argv
        assert "damaged" in r.err and r.err.rstrip().endswith(fix), (argv, r.err)
    assert os.path.isdir(os.path.join(boxes.root(), "broken")), "without --force nothing is removed"
    r = zomg("box", "rm", "--force", "broken")
    assert (r.code, r.err) == (0, "removed box 'broken'\n")
    assert sorted(os.listdir(boxes.root())) == ["fine"]
    assert zomg("box", "create", "broken").code == 0


def test_rm_force_never_follows_a_symlink_out_of_the_boxes_dir(zomg, tmp_path):
    zomg("box", "create", "fine")
    outside = tmp_path / "elsewhere"
    (outside / "workspace").mkdir(parents=True)
    (outside / "workspace" / "precious").write_text("keep")
    (outside / "box.json").write_text("{damaged")
    os.symlink(outside, os.path.join(boxes.root(), "linked"))
    r = zomg("box", "rm", "--force", "linked")
    assert r.code == 1 and "not a box directory" in r.err and r.err.count("\n") == 1
    assert (outside / "workspace" / "precious").read_text() == "keep"
    assert os.path.islink(os.path.join(boxes.root(), "linked"))


@pytest.mark.parametrize("entries", [[], ["src"], ["box.json", "other-stuff"]])
def test_rm_force_never_removes_a_directory_that_is_not_a_box(zomg, entries):
    zomg("box", "create", "fine")
    stranger = os.path.join(boxes.root(), "stranger")
    os.mkdir(stranger)
    for entry in entries:
        with open(os.path.join(stranger, entry), "w") as f:
            f.write("{damaged" if entry == "box.json" else "mine")
    r = zomg("box", "rm", "--force", "stranger")
    assert r.code == 1 and "does not look like a box directory" in r.err
    assert sorted(os.listdir(stranger)) == sorted(entries)


def test_metadata_is_json_written_whole(zomg):
    zomg("box", "create", "x", "--project", "p")
    with open(os.path.join(boxes.root(), "x", "box.json")) as f:
        data = json.load(f)
    assert data["name"] == "x" and data["project"] == "p" and data["format"] == 1
    leftovers = [n for n in os.listdir(boxes.root()) if n.startswith(".")]
    assert leftovers == []


def test_data_dir_that_cannot_be_created(zomg, tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    r = zomg("box", "create", "x")
    assert r.code == 1
    assert r.err.startswith("zomg: error: cannot create box 'x' in ") and r.err.count("\n") == 1


def test_unwritable_data_dir_is_a_permission_error(zomg, monkeypatch):
    real_mkdir = os.mkdir

    def denied(path, *args, **kwargs):
        if "boxes" in str(path):
            raise PermissionError(13, "Permission denied")
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", denied)
    monkeypatch.setattr(os, "makedirs", lambda *a, **k: denied(*a))
    r = zomg("box", "create", "x")
    assert (r.code, r.err.endswith("Permission denied\n")) == (1, True)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_data_dir_for_real(zomg):
    os.makedirs(boxes.root())
    os.chmod(boxes.root(), 0o500)
    try:
        r = zomg("box", "create", "x")
    finally:
        os.chmod(boxes.root(), 0o700)
    assert r.code == 1 and "Permission denied" in r.err


def test_two_processes_creating_the_same_box_give_one_box_and_one_conflict(tmp_path):
    import subprocess
    import sys

    script = ("import sys; from zomg.cli import main;"
              "sys.exit(main(['box', 'create', 'race', '--env', 'WHO=' + sys.argv[1]]))")
    for _ in range(5):
        procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], stderr=subprocess.PIPE, text=True)
                 for i in range(4)]
        results = [(p.wait(), p.stderr.read()) for p in procs]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 1, 1, 1], results
        assert all("already exists" in err for code, err in results if code == 1)
        box = boxes.get("race")
        assert box.env["WHO"] in {"0", "1", "2", "3"}
        assert sorted(os.listdir(boxes.root())) == ["race"]
        boxes.remove("race")


def test_show_prints_env_one_variable_per_line_shell_quoted(zomg):
    assert zomg("box", "create", "x", "--env", "A=x B=y", "--env", "C=z", "--env", "D=it's").code == 0
    lines = zomg("box", "show", "x").out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("env:"))
    assert [line.split(None, 1)[-1] if i == 0 else line.strip() for i, line in enumerate(lines[start:])] == [
        "A='x B=y'", "C=z", "D='it'\"'\"'s'"]


def test_rm_several_boxes_reports_each_and_exits_1_if_any_failed(zomg):
    for name in ("a1", "a2", "a3"):
        assert zomg("box", "create", name).code == 0
    with open(os.path.join(boxes.get("a2").workspace, "keep.txt"), "w") as f:
        f.write("mine")
    r = zomg("box", "rm", "a1", "a2", "nope", "a3")
    assert r.code == 1
    assert r.err.splitlines() == [
        "removed box 'a1'",
        "zomg: error: box 'a2' has files in its workspace; use --force to remove it with them",
        "zomg: error: no box named 'nope' (see 'zomg box list')",
        "removed box 'a3'",
        "zomg: error: 2 of 4 boxes not removed (see above)",
    ]
    assert sorted(os.listdir(boxes.root())) == ["a2"]
    r = zomg("box", "rm", "--force", "a2")
    assert (r.code, r.err) == (0, "removed box 'a2'\n")


def test_rm_several_removes_nothing_when_a_name_is_invalid(zomg):
    zomg("box", "create", "a1")
    r = zomg("box", "rm", "a1", "Bad_Name")
    assert r.code == 2 and "invalid box name 'Bad_Name'" in r.err
    assert boxes.get("a1")


def test_edit_changes_env_and_project_and_keeps_the_workspace(zomg):
    zomg("box", "create", "web", "--env", "PATH=/nonexistent", "--env", "KEEP=1")
    with open(os.path.join(boxes.get("web").workspace, "notes.txt"), "w") as f:
        f.write("mine")
    r = zomg("box", "edit", "web", "--unset-env", "PATH", "--env", "NEW=a b", "--project", "shop")
    assert (r.code, r.out) == (0, "")
    box = boxes.get("web")
    assert box.env == {"KEEP": "1", "NEW": "a b"} and box.project == "shop"
    assert os.path.exists(os.path.join(box.workspace, "notes.txt"))
    assert zomg("box", "edit", "web", "--no-project").code == 0
    assert boxes.get("web").project is None
    assert zomg("box", "list", "--project", "shop", "--names").out == ""


@pytest.mark.parametrize("argv,code,message", [
    (["web"], 2, "nothing to change"),
    (["web", "--project", "p", "--no-project"], 2, "choose one"),
    (["web", "--env", "A=1", "--unset-env", "A"], 2, "both name A"),
    (["web", "--unset-env", "MISSING"], 1, "has no variable MISSING"),
    (["web", "--unset-env", "1A"], 2, "invalid --unset-env '1A'"),
    (["web", "--env", "NOEQUALS"], 2, "invalid --env"),
    (["web", "--project", "Bad Project"], 2, "invalid project name"),
    (["nope", "--env", "A=1"], 1, "no box named 'nope'"),
])
def test_edit_refuses_bad_changes_and_changes_nothing(zomg, argv, code, message):
    zomg("box", "create", "web", "--env", "A=0")
    meta = os.path.join(boxes.root(), "web", "box.json")
    with open(meta, "rb") as f:
        before = f.read()
    r = zomg("box", "edit", *argv)
    assert r.code == code and message in r.err and r.err.count("\n") == 1, r.err
    with open(meta, "rb") as f:
        assert f.read() == before


def test_rename_moves_the_box_with_its_files(zomg):
    zomg("box", "create", "web", "--project", "shop", "--env", "A=1")
    with open(os.path.join(boxes.get("web").workspace, "notes.txt"), "w") as f:
        f.write("mine")
    r = zomg("box", "rename", "web", "shop-web")
    assert r.code == 0
    assert sorted(os.listdir(boxes.root())) == ["shop-web"]
    box = boxes.get("shop-web")
    assert (box.project, box.env) == ("shop", {"A": "1"})
    with open(os.path.join(box.workspace, "notes.txt")) as f:
        assert f.read() == "mine"
    assert json.loads(zomg("box", "show", "shop-web", "--json").out)["name"] == "shop-web"


@pytest.mark.parametrize("argv,code,message", [
    (["web", "db"], 1, "box 'db' already exists"),
    (["web", "Bad"], 2, "invalid box name 'Bad'"),
    (["web", "web"], 1, "already has that name"),
    (["nope", "other"], 1, "no box named 'nope'"),
])
def test_rename_refuses_and_leaves_both_boxes_alone(zomg, argv, code, message):
    zomg("box", "create", "web", "--env", "A=1")
    zomg("box", "create", "db", "--env", "B=2")
    r = zomg("box", "rename", *argv)
    assert r.code == code and message in r.err and r.err.count("\n") == 1, r.err
    assert sorted(os.listdir(boxes.root())) == ["db", "web"]
    assert boxes.get("web").env == {"A": "1"} and boxes.get("db").env == {"B": "2"}


def test_rename_refuses_a_name_taken_by_a_damaged_box_or_a_stray_directory(zomg):
    zomg("box", "create", "web")
    os.mkdir(os.path.join(boxes.root(), "taken"))
    r = zomg("box", "rename", "web", "taken")
    assert r.code == 1 and "already exists" in r.err
    assert os.listdir(os.path.join(boxes.root(), "taken")) == []
    assert boxes.get("web")


def test_rm_the_same_name_twice_removes_it_once(zomg):
    zomg("box", "create", "a1")
    r = zomg("box", "rm", "a1", "a1")
    assert (r.code, r.err) == (0, "removed box 'a1'\n")
