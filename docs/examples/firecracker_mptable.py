"""Give the firmware's MP table Firecracker's entry_count, from GDB.

Firecracker cannot run here, so this makes QEMU's table look like the one the
FreeBSD port met on it (seeds/000: entry_count 30 for a 29-entry table, and a
walker that trusts the count reads 68 after the last entry). Source it in GDB
with kbu loaded, stopped before the kernel reads the table (at its PVH entry:
`kbu recipe pvh-entry`):

    (gdb) kbu recipe pvh-entry
    (gdb) source docs/examples/firecracker_mptable.py
    (gdb) kbu recipe mptable-walk

It finds the table with `kbu mptable --json`, writes entry_count = the entries
walked by length + 1, puts the byte 0x44 right after the table, and fixes the
checksum as a VMM that computes it last would. The kernel is not changed.
"""
import json

import gdb

report = json.loads(gdb.execute("kbu mptable --json", to_string=True))
header = report["header"]
table, length = header["address"], header["base_table_length"]
entries = header["entries_walked"]
inferior = gdb.selected_inferior()
body = bytearray(inferior.read_memory(table, length))
old_count = int.from_bytes(body[34:36], "little")
body[34:36] = (entries + 1).to_bytes(2, "little")   # entry_count
body[7] = 0                                           # checksum: the bytes sum to 0
body[7] = -sum(body) & 0xff
inferior.write_memory(table, bytes(body))
inferior.write_memory(table + length, b"\x44")
print("firecracker_mptable: config table at 0x%x (%d bytes, %d entries): entry_count %d -> %d, "
      "checksum 0x%02x, byte 0x44 at 0x%x" % (table, length, entries, old_count, entries + 1,
                                                body[7], table + length))
