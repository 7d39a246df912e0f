"""mptable-walk: the firmware's MP table walked as the kernel does.

Runs to the end state (a panic in the kernel's walker is one); libkbu walks
the table by its base table length and by its entry_count (what a walker that
trusts the count reads, past the end included), follows the kernel's own
pointer to the table (profile role mp_table) and compares.
"""
NAME = "mptable-walk"


def gather(r):
    r.end_state()
