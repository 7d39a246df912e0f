"""kbu triage recipes: one module per question a porter asks.

Each recipe module (the recipe name with '-' as '_') defines NAME (the
question libkbu's `kbu verdict` answers) and gather(r), where r is a
kbu.runtime.Run: the recipe only drives the guest (r.end_state(), watches,
r.cpuid(), stops at the PVH entry) and puts what it saw into r.live; libkbu
reads the rest from memory and judges. `kbu recipe NAME`
(gdbext/kbu/recipe.py) runs it inside GDB; scripts/kbu-triage boots a kernel
and runs it in batch mode.
"""
