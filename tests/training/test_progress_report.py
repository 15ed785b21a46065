from training.progress_report import ProgressReport, duration


def test_duration_reads_like_a_person_says_it():
    assert [duration(s) for s in (0, 59.4, 60, 250, 3600, 5400)] == [
        "0 s",
        "59 s",
        "1 min",
        "4 min 10 s",
        "1 h 0 min",
        "1 h 30 min",
    ]


def test_progress_is_said_at_most_every_interval_with_the_time_left():
    now = [0.0]
    report = ProgressReport("run 7 (dpo)", every_s=30, clock=lambda: now[0])
    now[0] = 20.0  # loading the model took 20 s: not counted in the pace
    assert report.line(1, 10) == "run 7 (dpo): step 1/10 after 20 s"
    now[0] = 30.0
    assert report.line(2, 10) is None  # said 10 s ago
    now[0] = 60.0
    # 3 steps in 40 s since the first: 13.3 s a step, 6 steps left
    assert report.line(4, 10) == "run 7 (dpo): step 4/10 after 1 min, about 1 min 20 s left"
    now[0] = 61.0
    assert report.line(10, 10) == "run 7 (dpo): step 10/10 after 1 min 1 s"  # the last step always


def test_a_run_without_a_total_says_its_step():
    report = ProgressReport("run 3 (generate)", clock=lambda: 5.0)
    assert report.line(40, None) == "run 3 (generate): step 40 after 0 s"
