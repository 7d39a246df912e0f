"""timecounter-stuck: does the kernel's clock ever leave its placeholder?

Arms `kbu watch timecounter` from the first instruction (the profile's active
time source and calls of its registration entry) and runs the guest to its end
state; libkbu judges the history against the profile's placeholder sources.
"""
NAME = "timecounter-stuck"
WATCH = ("timecounter",)   # armed from the first instruction, before the guest runs


def gather(r):
    r.end_state(watch=WATCH)
