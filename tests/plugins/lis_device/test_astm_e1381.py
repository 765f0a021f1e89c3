import pytest

from plugins.lis_device.astm.e1381 import (
    Discarded,
    E1381Link,
    E1381Timers,
    FrameRejected,
    LinkState,
    MessageSent,
    Send,
    SendFailed,
    TransferAborted,
    TransferReceived,
)
from plugins.lis_device.astm.frames import (
    build_frame,
    checksum,
    frames_for_message,
    frames_for_record,
    parse_frame,
)
from tests.plugins.lis_device.samples import fixture_bytes, shared_sample_files

ENQ, ACK, NAK, EOT, STX = b"\x05", b"\x06", b"\x15", b"\x04", b"\x02"
RECORDS = b"H|\\^&|||SYN\rP|1||SYN-PAT-01\rO|1|BC1||^^^GLU\rR|1|^^^GLU|5.6|mmol/L\rL|1|N\r"


def sent(events):
    return b"".join(event.data for event in events if isinstance(event, Send))


def only(events, kind):
    found = [event for event in events if isinstance(event, kind)]
    assert len(found) == 1, events
    return found[0]


def corrupt(frame: bytes) -> bytes:
    return frame[:-4] + (b"00" if frame[-4:-2] != b"00" else b"11") + frame[-2:]


# -- frames -------------------------------------------------------------------------------


def test_checksums_match_published_device_frames():
    assert checksum(b"7L|1\r\x03") == b"40"  # ARCHITECT, published with the trace
    assert checksum(b"4L|1|N\r\x03") == b"07"  # Mindray download sample
    assert build_frame(7, b"L|1\r", final=True) == b"\x027L|1\r\x0340\r\n"


def test_frame_numbers_wrap_modulo_8_and_long_records_use_etb():
    record = b"R|1|" + b"x" * 300 + b"\r"
    frames = frames_for_record(record, first_number=7)
    assert [frame[1:2] for frame in frames] == [b"7", b"0"]
    assert frames[0][-5] == 0x17 and frames[1][-5] == 0x03
    assert len(frames[0]) == 247
    assert b"".join(parse_frame(frame).text for frame in frames) == record
    assert len(frames_for_message(RECORDS)) == 5
    assert frames_for_message(RECORDS.replace(b"\r", b"\n")) == frames_for_message(RECORDS)


def test_parse_frame_reports_problems():
    good = build_frame(3, b"R|1\r", final=False)
    assert parse_frame(good).problem == "" and not parse_frame(good).final
    assert parse_frame(corrupt(good)).problem == "checksum mismatch"
    assert parse_frame(b"\x029R|1\r\x0300").problem == "frame number is not a digit 0-7"


# -- receiver -----------------------------------------------------------------------------


def full_transfer(frames: list[bytes]) -> bytes:
    return ENQ + b"".join(frames) + EOT


def test_receiver_full_session_with_transcript():
    link = E1381Link()
    frames = frames_for_message(RECORDS)
    events = link.receive(full_transfer(frames), now=0.0)
    assert sent(events) == ACK * (1 + len(frames))
    received = only(events, TransferReceived)
    assert received.text == RECORDS
    assert received.frames == 5
    expected = ENQ + ACK + b"".join(frame + ACK for frame in frames) + EOT
    assert received.transcript == expected
    assert link.state is LinkState.NEUTRAL and link.deadline is None


def test_receiver_byte_by_byte_equals_one_read():
    link = E1381Link()
    wire = full_transfer(frames_for_message(RECORDS))
    events = []
    for position in range(len(wire)):
        events += link.receive(wire[position : position + 1], now=float(position))
    assert only(events, TransferReceived).text == RECORDS


def test_bad_checksum_is_nakked_and_retransmission_accepted():
    link = E1381Link()
    frames = frames_for_message(RECORDS)
    events = link.receive(ENQ + frames[0] + corrupt(frames[1]), now=0.0)
    assert sent(events) == ACK + ACK + NAK
    assert only(events, FrameRejected).reason == "checksum mismatch"
    events = link.receive(b"".join(frames[1:]) + EOT, now=1.0)
    received = only(events, TransferReceived)
    assert received.text == RECORDS
    assert corrupt(frames[1]) + NAK + frames[1] + ACK in received.transcript


def test_repeated_frame_after_lost_ack_is_acked_once_not_appended():
    link = E1381Link()
    frames = frames_for_message(RECORDS)
    events = link.receive(ENQ + frames[0] + frames[0] + b"".join(frames[1:]) + EOT, now=0.0)
    assert only(events, TransferReceived).text == RECORDS


def test_wrong_frame_number_is_nakked():
    link = E1381Link()
    frames = frames_for_message(RECORDS)
    events = link.receive(ENQ + frames[1], now=0.0)
    assert sent(events) == ACK + NAK
    assert only(events, FrameRejected).reason == "frame number 2, expected 1"


def test_etb_split_fixture_with_any_trailer():
    raw = fixture_bytes("astm", "results_etb_split_transcript.astm")
    for trailer in (b"\r", b"\n", b""):
        link = E1381Link()
        events = link.receive(raw.replace(b"\r\n", trailer), now=0.0)
        text = only(events, TransferReceived).text
        assert b"haemolysed, END|" in text and text.count(b"\r") == 6


def test_frame_numbers_wrap_through_zero():
    records = b"".join(b"R|%d|^^^T%d|%d\r" % (n, n, n) for n in range(1, 12))
    frames = frames_for_message(records)
    assert [frame[1:2] for frame in frames[6:9]] == [b"7", b"0", b"1"]
    events = E1381Link().receive(full_transfer(frames), now=0.0)
    assert only(events, TransferReceived).text == records


def test_receiver_timeout_drops_partial_transfer():
    timers = E1381Timers(receiver_idle=30.0)
    link = E1381Link(timers=timers)
    frames = frames_for_message(RECORDS)
    link.receive(ENQ + frames[0], now=100.0)
    assert link.deadline == 130.0
    assert link.tick(129.9) == []
    aborted = only(link.tick(130.0), TransferAborted)
    assert aborted.reason.startswith("receiver timeout")
    assert aborted.transcript.startswith(ENQ + ACK + frames[0])
    assert link.state is LinkState.NEUTRAL
    # The next transfer starts clean at frame 1.
    assert only(link.receive(full_transfer(frames), now=200.0), TransferReceived).text == RECORDS


def test_busy_receiver_answers_enq_with_nak():
    link = E1381Link()
    link.busy = True
    assert sent(link.receive(ENQ, now=0.0)) == NAK
    assert link.state is LinkState.NEUTRAL


def test_noise_outside_a_transfer_is_discarded_and_reported():
    link = E1381Link()
    events = link.receive(fixture_bytes("astm", "proprietary_not_astm.txt") + ENQ, now=0.0)
    assert only(events, Discarded).data.startswith(b"\x02SYN-EL")
    assert sent(events) == ACK


def test_eot_after_intermediate_frame_aborts_transfer():
    link = E1381Link()
    partial = build_frame(1, b"R|1|^^^GLU|5", final=False)
    events = link.receive(ENQ + partial + EOT, now=0.0)
    assert only(events, TransferAborted).reason.startswith("EOT after an intermediate")


def test_checksum_can_be_ignored_for_broken_devices():
    link = E1381Link(verify_checksum=False)
    frames = [corrupt(frame) for frame in frames_for_message(RECORDS)]
    events = link.receive(full_transfer(frames), now=0.0)
    assert NAK not in sent(events)
    assert only(events, TransferReceived).text == RECORDS


def test_frame_cut_short_by_eot_is_reported():
    link = E1381Link()
    events = link.receive(ENQ + b"\x021H|\\^&" + EOT, now=0.0)
    assert only(events, FrameRejected).reason.startswith("frame cut short")
    assert only(events, TransferAborted).reason == "EOT before any accepted frame"


def test_empty_transfer_is_reported_not_delivered():
    events = E1381Link().receive(ENQ + EOT, now=0.0)
    assert only(events, TransferAborted).transcript == ENQ + ACK + EOT


# -- sender -------------------------------------------------------------------------------


def test_sender_full_session():
    link = E1381Link()
    frames = frames_for_message(RECORDS)
    assert sent(link.send_message(RECORDS, now=0.0)) == ENQ
    assert link.deadline == 15.0
    out = []
    events = link.receive(ACK, now=1.0)
    for _ in frames:
        out.append(sent(events))
        events = link.receive(ACK, now=2.0)
    assert out == frames
    assert sent(events) == EOT
    done = only(events, MessageSent)
    assert done.transcript == ENQ + ACK + b"".join(frame + ACK for frame in frames) + EOT
    assert link.state is LinkState.NEUTRAL


def test_sender_splits_long_records_into_etb_frames():
    link = E1381Link(max_frame_text=240)
    record = b"O|1|BC1||" + b"\\".join(b"^^^T%03d" % n for n in range(60)) + b"\r"
    link.send_message(b"H|\\^&\r" + record + b"L|1|N\r", now=0.0)
    frames = []
    events = link.receive(ACK, now=0.0)
    while not any(isinstance(event, MessageSent) for event in events):
        frames.append(sent(events))
        events = link.receive(ACK, now=0.0)
    assert [parse_frame(frame).final for frame in frames] == [True, False, False, True, True]
    assert all(len(parse_frame(frame).text) <= 240 for frame in frames)
    assert b"".join(parse_frame(frame).text for frame in frames[1:4]) == record


def test_sender_retransmits_on_nak_or_other_reply():
    link = E1381Link()
    first = frames_for_message(RECORDS)[0]
    link.send_message(RECORDS, now=0.0)
    assert sent(link.receive(ACK, now=0.0)) == first
    assert sent(link.receive(NAK, now=0.0)) == first
    assert sent(link.receive(b"?", now=0.0)) == first
    assert sent(link.receive(ACK, now=0.0)) == frames_for_message(RECORDS)[1]


def test_sender_aborts_after_six_refusals():
    link = E1381Link()
    link.send_message(RECORDS, now=0.0)
    transmissions = [sent(link.receive(ACK, now=0.0))]
    for _ in range(5):
        transmissions.append(sent(link.receive(NAK, now=0.0)))
    events = link.receive(NAK, now=0.0)
    assert len(transmissions) == 6 and len(set(transmissions)) == 1
    assert sent(events) == EOT
    assert only(events, SendFailed).reason == "frame refused 6 times"
    assert link.state is LinkState.NEUTRAL


@pytest.mark.parametrize("stage", ["enq", "frame"])
def test_sender_timeout_sends_eot_and_fails(stage):
    link = E1381Link(timers=E1381Timers(sender_reply=15.0))
    link.send_message(RECORDS, now=0.0)
    now = 0.0
    if stage == "frame":
        link.receive(ACK, now=5.0)
        now = 5.0
    assert link.tick(now + 14.9) == []
    events = link.tick(now + 15.0)
    assert sent(events) == EOT
    assert only(events, SendFailed).reason == f"no reply to {'ENQ' if stage == 'enq' else 'frame'}"


def test_busy_receiver_nak_to_enq_retries_after_10_s_then_gives_up():
    link = E1381Link()
    assert sent(link.send_message(RECORDS, now=0.0)) == ENQ
    now = 0.0
    for _ in range(5):
        assert link.receive(NAK, now=now) == []
        assert link.state is LinkState.WAIT_TO_ENQ and link.deadline == now + 10.0
        now += 10.0
        assert sent(link.tick(now)) == ENQ
    events = link.receive(NAK, now=now)
    assert only(events, SendFailed).reason.startswith("receiver busy")
    assert EOT not in sent(events)


def test_receiver_interrupt_eot_is_taken_as_ack():
    link = E1381Link()
    frames = frames_for_message(RECORDS)
    link.send_message(RECORDS, now=0.0)
    link.receive(ACK, now=0.0)
    assert sent(link.receive(EOT, now=0.0)) == frames[1]


def test_messages_queued_while_busy_go_one_transfer_each():
    link = E1381Link()
    link.send_message(b"H|\\^&\rL|1|N\r", now=0.0)
    assert link.send_message(b"H|\\^&\rL|1|I\r", now=0.0) == []
    link.receive(ACK, now=0.0)
    link.receive(ACK, now=0.0)
    events = link.receive(ACK, now=0.0)
    assert sent(events) == EOT + ENQ
    only(events, MessageSent)


# -- contention ---------------------------------------------------------------------------


def test_host_yields_on_contention_receives_then_sends_after_20_s():
    host = E1381Link(has_priority=False)
    assert sent(host.send_message(RECORDS, now=0.0)) == ENQ
    assert host.receive(ENQ, now=0.5) == []  # the instrument's ENQ collided with ours
    assert host.state is LinkState.NEUTRAL
    instrument_records = b"H|\\^&\rR|1|^^^K|4.1\rL|1|N\r"
    events = host.receive(ENQ, now=1.5)  # the instrument tries again after >= 1 s
    assert sent(events) == ACK
    events = host.receive(b"".join(frames_for_message(instrument_records)) + EOT, now=2.0)
    assert only(events, TransferReceived).text == instrument_records
    assert host.state is LinkState.WAIT_TO_ENQ and host.deadline == 20.5
    assert host.tick(20.0) == []
    assert sent(host.tick(20.5)) == ENQ


def test_instrument_keeps_priority_on_contention():
    instrument = E1381Link(has_priority=True)
    instrument.send_message(RECORDS, now=0.0)
    assert instrument.receive(ENQ, now=0.2) == []
    assert instrument.deadline == pytest.approx(1.2)
    assert sent(instrument.tick(1.2)) == ENQ


# -- two links talking --------------------------------------------------------------------


def converse(sender: E1381Link, receiver: E1381Link, records: bytes, fault=None):
    """Shuttle bytes between two links; `fault(data)` may damage what the sender writes."""
    pending_to_receiver = sent(sender.send_message(records, now=0.0))
    received: list = []
    finished: list = []
    for step in range(200):
        data = fault(pending_to_receiver) if fault else pending_to_receiver
        back = receiver.receive(data, now=float(step))
        received += back
        events = sender.receive(sent(back), now=float(step))
        finished += [event for event in events if isinstance(event, (MessageSent, SendFailed))]
        pending_to_receiver = sent(events)
        if finished and not pending_to_receiver:
            break
    return received, finished


def test_instrument_to_host_with_one_damaged_frame():
    damaged = {"done": False}

    def damage_second_frame(data: bytes) -> bytes:
        if data.startswith(STX + b"2") and not damaged["done"]:
            damaged["done"] = True
            return corrupt(data)
        return data

    received, finished = converse(
        E1381Link(has_priority=True), E1381Link(), RECORDS, damage_second_frame
    )
    assert isinstance(finished[0], MessageSent)
    assert only(received, TransferReceived).text == RECORDS
    assert only(received, FrameRejected).reason == "checksum mismatch"


def test_always_damaged_frames_end_in_abort_on_both_sides():
    def damage_all_frames(data: bytes) -> bytes:
        return corrupt(data) if data.startswith(STX) else data

    received, finished = converse(E1381Link(), E1381Link(), RECORDS, damage_all_frames)
    assert only(finished, SendFailed).reason == "frame refused 6 times"
    assert len([event for event in received if isinstance(event, FrameRejected)]) == 6
    assert (
        only(received, TransferAborted).reason == "sender ended the transfer after a refused frame"
    )


SHARED_TRANSCRIPTS = [
    path for path in shared_sample_files("astm", ".astm") if path.read_bytes().startswith(ENQ)
]


@pytest.mark.samples
@pytest.mark.skipif(not SHARED_TRANSCRIPTS, reason="../shared/samples/astm absent beside the repo")
@pytest.mark.parametrize("path", SHARED_TRANSCRIPTS, ids=lambda path: path.name)
def test_shared_transcripts_are_received_whole(path):
    events = E1381Link().receive(path.read_bytes(), now=0.0)
    transfers = [event for event in events if isinstance(event, TransferReceived)]
    assert transfers and not [
        event for event in events if isinstance(event, (FrameRejected, TransferAborted))
    ]
    assert all(transfer.text.startswith(b"H") for transfer in transfers)
