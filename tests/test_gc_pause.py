"""The collector pause: off inside the block, as it was after it, even after an error."""

from __future__ import annotations

import gc

import pytest

from msd_tasks.formats.deliverables import gc_paused


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_inside_and_as_it_was_after(enabled):
    (gc.enable if enabled else gc.disable)()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(KeyError), gc_paused():
            raise KeyError("inside")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
