"""`kbu recipe NAME`: run a triage recipe (recipes/*.py) against the attached guest.

The recipes live in <repo>/recipes (or $KBU_RECIPES) and are imported as the
package `kbu_recipes`. A recipe drives the guest and gathers what only a
debugger sees (kbu/runtime.py); libkbu's `kbu verdict` judges it and prints
the evidence and a VERDICT. The status (0 no problem, 1 problem found, 2
could not run or undecided) is left in $kbu_recipe_status for scripts.
"""
import importlib
import importlib.util
import json
import os
import sys
import traceback

import gdb

from . import core, native, runtime, session, settings
from .core import KbuCommand, KbuError

PACKAGE = "kbu_recipes"


def recipes_dir():
    return os.environ.get("KBU_RECIPES") or os.path.join(native.REPO, "recipes")


def _package():
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    d = recipes_dir()
    init = os.path.join(d, "__init__.py")
    if not os.path.isfile(init):
        raise native.NotFound("no recipes in %s (set KBU_RECIPES to the recipes directory)" % d)
    spec = importlib.util.spec_from_file_location(PACKAGE, init,
                                                  submodule_search_locations=[d])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception:
        del sys.modules[PACKAGE]
        raise
    return mod


def names():
    """Recipe names (with dashes) found in the recipes directory, sorted."""
    d = recipes_dir()
    try:
        files = os.listdir(d)
    except OSError as e:
        raise native.IOFailure("cannot list recipes in %s: %s" % (d, e.strerror))
    return sorted(f[:-3].replace("_", "-") for f in files
                  if f.endswith(".py") and not f.startswith("_"))


def load(name):
    """The recipe module for NAME (dashes or underscores)."""
    mod_name = name.replace("-", "_")
    if name not in names():
        raise native.NotFound("no recipe \"%s\" (kbu recipe --list shows them: %s)"
                       % (name, ", ".join(names())))
    _package()
    try:
        mod = importlib.import_module("%s.%s" % (PACKAGE, mod_name))
    except Exception as e:
        if core.debug_enabled():
            gdb.write(traceback.format_exc(), gdb.STDERR)
        raise native.FormatError("recipe %s does not load: %s: %s" % (name, type(e).__name__, e))
    for attr in ("NAME", "gather"):
        if not hasattr(mod, attr):
            raise native.FormatError("recipe %s has no %s" % (name, attr))
    return mod


def _without_symbols():
    """True when the session has no symbol map and its kernel no symbols: what
    a recipe that could not run then needs is the System.map."""
    if settings.get("symbols"):
        return False
    try:
        return session.ctx().nsyms() == 0
    except KbuError:
        return False


def _set_status(st):
    gdb.execute("set $kbu_recipe_status = %d" % st, False, True)


def run_one(name, timeout=20.0, here=False, console=None, also_watch=(), as_json=False):
    """Runs recipe NAME and asks libkbu for its verdict; returns (status, json, text)."""
    mod = load(name)
    r = runtime.Run(mod.NAME, timeout=timeout, here=here, console=console,
                    also_watch=also_watch)
    try:
        mod.gather(r)
        status = r.ask(as_json)
        return status, r.result, r.text
    except (KbuError, gdb.error, KeyboardInterrupt) as e:
        msg = str(e) or "interrupted"
    except Exception as e:
        if core.debug_enabled():
            gdb.write(traceback.format_exc(), gdb.STDERR)
        msg = "internal error: %s: %s" % (type(e).__name__, e)
    if _without_symbols():
        msg += " (a stripped kernel such as Linux's vmlinux needs its System.map: " \
               "set kbu symbols FILE, or kbu-triage --symbols FILE)"
    summary = runtime.questions().get(mod.NAME, "")
    return (runtime.UNDECIDED, runtime.undecided(mod.NAME, msg),
            runtime.undecided_text(mod.NAME, summary, msg))


class Recipe(KbuCommand):
    """Run a triage recipe: evidence from the guest and a VERDICT (kbu recipe --list).

Runs the guest to an end state (a panic or assertion entry, the idle loop,
or --timeout seconds) unless it already stands in one or --here is given,
gathers evidence with the kbu commands and prints a verdict that names the
cause and the next step. $kbu_recipe_status is set to 0 (no problem),
1 (problem found) or 2 (could not run / undecided). Several recipes may be
given separated by commas; they share the end state."""

    name = "recipe"
    completer = -1   # "no completer class": GDB then calls complete() below

    def parser(self, p):
        p.add_argument("recipe", nargs="?", help="recipe name, or NAME,NAME,...")
        p.add_argument("--list", action="store_true", help="list the recipes")
        p.add_argument("--json", action="store_true", help="the report as JSON")
        p.add_argument("--timeout", type=float, default=20.0,
                       help="seconds the guest may run before it is interrupted (default 20)")
        p.add_argument("--here", action="store_true",
                       help="do not run the guest: inspect it where it stands")
        p.add_argument("--console", metavar="FILE",
                       help="the guest's serial log, used when the message buffer is unreadable")
        p.add_argument("--output", metavar="FILE",
                       help="write the report to FILE instead of the console")

    def run(self, a):
        if a.list:
            rows = []
            summaries = runtime.questions()
            for n in names():
                try:
                    rows.append((n, summaries.get(load(n).NAME, "(no question of that name in libkbu)")))
                except KbuError as e:
                    rows.append((n, "! %s" % e))
            if a.json:
                text = json.dumps({"recipes": [{"name": n, "summary": s} for n, s in rows]})
            else:
                w = max(len(n) for n, _ in rows) if rows else 0
                text = "\n".join("%-*s  %s" % (w, n, s) for n, s in rows)
            self._emit(text, a.output)
            return
        if not a.recipe:
            raise native.InputError("give a recipe name (kbu recipe --list shows them)")
        if a.timeout <= 0:
            raise native.InputError("--timeout wants a positive number of seconds")
        _set_status(2)
        wanted = [x for x in a.recipe.split(",") if x]
        kinds, mods = [], []
        for n in wanted:   # an unknown name fails before the guest runs
            mods.append(load(n))
            kinds += [k for k in getattr(mods[-1], "WATCH", ()) if k not in kinds]
        # Recipes that let the guest run on past the end state (LAST = True) go
        # after the others, so those see the state the end state left; the
        # report keeps the order asked for.
        order = sorted(range(len(wanted)), key=lambda i: bool(getattr(mods[i], "LAST", False)))
        runs = [None] * len(wanted)
        try:
            for i in order:
                runs[i] = run_one(wanted[i], a.timeout, a.here, a.console, kinds, a.json)
        finally:
            runtime.release_watches()
        status = max(st for st, _, _ in runs)
        if a.json:
            if len(runs) == 1:
                text = json.dumps(runs[0][1])
            else:
                text = json.dumps({"status": status, "recipes": [j for _, j, _ in runs]})
        else:
            text = "\n".join(t.rstrip("\n") + "\n" for _, _, t in runs)
        self._emit(text, a.output)
        _set_status(status)

    def complete(self, text, word):
        """Recipe names, also after a comma."""
        word = word or ""
        head, _, last = word.rpartition(",")
        try:
            return [(head + "," if head else "") + n for n in names() if n.startswith(last)]
        except KbuError:
            return []

    @staticmethod
    def _emit(text, output):
        if output:
            try:
                with open(output, "w") as f:
                    f.write(text if text.endswith("\n") else text + "\n")
            except OSError as e:
                raise native.IOFailure("cannot write %s: %s" % (output, e.strerror))
        else:
            core.out(text)
