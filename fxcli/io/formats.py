"""The audio format vocabulary: which file extensions are audio, the containers
``--format`` can write (and the extension each gets), and the sample formats
(subtypes) by bit depth. Plain data, no imports: the CLI builds its option
choices from it without loading numpy or soundfile.

The output subtypes a preset or ``--subtype`` may ask for are listed once, here
(:data:`OUTPUT_SUBTYPES`; the preset spec reads them from this module)."""

from __future__ import annotations

#: the output subtypes a preset's ``output.subtype`` or ``--subtype`` may ask for
#: ("same": the input's own)
OUTPUT_SUBTYPES = ("same", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8", "PCM_S8")

#: extensions (lower case) of the files that folders and globs take as audio inputs
AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".aif",
        ".aiff",
        ".aifc",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".w64",
        ".rf64",
        ".caf",
        ".au",
        ".snd",
    }
)
#: ``--format`` value -> the extension its outputs get ("same": the input's own)
FORMAT_EXTENSIONS = {"wav": ".wav", "flac": ".flac"}
#: bits per sample of the integer PCM subtypes
PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
#: libsndfile's major formats of the RIFF/WAVE family
WAV_FORMATS = frozenset({"WAV", "WAVEX", "RF64"})
#: extension (lower case) -> the libsndfile container a file of that name is written in
EXTENSION_CONTAINERS = {
    ".wav": "WAV",
    ".flac": "FLAC",
    ".aiff": "AIFF",
    ".aif": "AIFF",
    ".ogg": "OGG",
}
