"""jvQuant protocol helpers the producer uses without the decoder."""

from __future__ import annotations


def test_row_codes_names_the_codes_of_a_data_frame_for_the_liveness_watch() -> None:
    from marketpipe.providers.jvquant.protocol import deflate_raw, row_codes

    frame = deflate_raw("lv1_600519=10:00:00,贵州茅台,1\nlv2_600519=1|2\nlv10_000001=x\nbogus_1=2\nlv2_=3")
    assert row_codes(frame) == {"600519", "000001"}
    assert row_codes(b"\xff\x00not deflate") == set()
