"""kbu triage recipes: one module per question a porter asks.

Each recipe module (the recipe name with '-' as '_') defines NAME, SUMMARY
and run(r), where r is a _common.Run: the recipe drives the guest to an end
state with r.end_state(), gathers evidence from kbu commands' JSON, and ends
with r.verdict(). `kbu recipe NAME` (gdbext/kbu/recipe.py) runs it inside GDB;
scripts/kbu-triage boots a kernel and runs it in batch mode.
"""
