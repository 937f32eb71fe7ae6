#!/usr/bin/env python3
"""Stage 0 of egs/crossvoices: the recordings of one unpacked new package -> 16 kHz mono 16-bit wav.

    local/decode_clips.py [--nj 2] <unpacked package> <corpus> <package>

egs/voiceprompts' local/decode.py (soundfile, channels averaged, soxr to 16 kHz, the stamp
<corpus>/.done.<package>, failed files listed) with this recipe's list of recordings
(local/clip_sources.py): <corpus>/speech/<spk>/<clip>.wav and <corpus>/noise/<package>/<rec>.wav.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parents[1] / "voiceprompts" / "local"))
from clip_sources import sources  # noqa: E402
from decode import main  # noqa: E402  (egs/voiceprompts/local/decode.py)

if __name__ == "__main__":
    sys.exit(main(sources))
