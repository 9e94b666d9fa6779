"""Stream slots per SDK key and per client address (one process's share keeping)."""

from __future__ import annotations

from flagsvc.delivery.stream_slots import Share
from flagsvc.delivery.stream_slots import Slot
from flagsvc.delivery.stream_slots import StreamSlots


def test_take__over_the_keys_share__refused_naming_the_key_others_still_get_in():
    slots = StreamSlots(per_key=2, per_address=10)
    assert isinstance(slots.take(1, "a"), Slot) and isinstance(slots.take(1, "b"), Slot)
    assert slots.take(1, "c") == Share("this SDK key", 2)
    assert isinstance(slots.take(2, "a"), Slot)


def test_take__over_the_addresss_share__refused_naming_the_address():
    slots = StreamSlots(per_key=10, per_address=1)
    assert isinstance(slots.take(1, "a"), Slot)
    assert slots.take(2, "a") == Share("this client address", 1)
    assert isinstance(slots.take(2, "b"), Slot)


def test_release__twice__gives_back_one_slot_once():
    slots = StreamSlots(per_key=1, per_address=1)
    slot = slots.take(1, "a")
    assert isinstance(slot, Slot)
    slot.release()
    slot.release()  # the generator's finally and the response's close both call it
    assert slots.held(1) == 0
    again = slots.take(1, "a")
    assert isinstance(again, Slot)
    assert isinstance(slots.take(1, "a"), Share)  # the second release freed nothing more
