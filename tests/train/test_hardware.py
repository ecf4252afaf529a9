"""The training record of where a run ran and how fast (`trained_on`), and its line for users."""

from licodec.train.hardware import add_time, cpu_name, describe, machine, trained_on


def test_segments_merge_on_the_same_machine_and_split_on_another():
    here = machine(threads=1, device="cpu", precision="bf16")
    assert here["cpu"] == cpu_name() and here["cpu"]
    segments = add_time([], here, 1, 0.5)
    segments = add_time(segments, here, 3, 1.5)
    assert segments == [{**here, "steps": 4, "seconds": 2.0}]
    other = {**here, "threads": 2}
    segments = add_time(segments, other, 2, 0.5)
    assert [s["steps"] for s in segments] == [4, 2]
    record = trained_on(segments)
    assert [s["steps_per_second"] for s in record] == [2.0, 4.0]
    assert add_time(segments, here, 0, 1.0) == segments  # nothing timed, nothing added


def test_describe_says_what_a_file_recorded_and_what_it_did_not():
    here = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_flags": "amx_bf16 avx512f", "logical_cpus": 2,
            "threads": 1, "device": "cpu", "precision": "bf16", "processes": 1}
    line = describe({"steps": 10, "trained_on": trained_on([{**here, "steps": 10, "seconds": 4.0}])})
    assert line == ("Intel(R) Xeon(R) Processor (2 logical CPUs, amx_bf16 avx512f), 1 thread, bf16: "
                    "2.5 steps/s over 10 steps")
    old = describe({"steps": 5000, "hardware": "2-core Xeon CPU (AMX), no GPU", "time": "about 67 min"})
    assert old == ("2-core Xeon CPU (AMX), no GPU (CPU model not recorded); steps per second not recorded; "
                   "recorded time: about 67 min")
    assert describe({"steps": 1}) == "CPU not recorded; steps per second not recorded"
    assert describe({"imported_from": "compressai"}).startswith("imported from compressai")
