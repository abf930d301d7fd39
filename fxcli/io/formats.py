"""The audio format vocabulary: which file extensions are audio, the containers
``--format`` can write (and the extension each gets), and the sample formats
(subtypes) by bit depth. Plain data, no imports: the CLI builds its option
choices from it without loading numpy or soundfile.

The output subtypes a preset or ``--subtype`` may ask for are listed once, here
(:data:`OUTPUT_SUBTYPES`; the preset spec reads them from this module). Which
container and codec a file is written in follows its name
(:data:`EXTENSION_CONTAINERS`, :data:`EXTENSION_CODECS`; rules in
:mod:`fxcli.io.containers`)."""

from __future__ import annotations

#: the subtypes (codecs, sample formats) each writable container can hold, as
#: libsndfile 1.2 lists them; what the installed libsndfile can really write is
#: checked when a file is written (:mod:`fxcli.io.containers`)
CONTAINER_SUBTYPES: dict[str, tuple[str, ...]] = {
    "WAV": (
        "PCM_16",
        "PCM_24",
        "PCM_32",
        "PCM_U8",
        "FLOAT",
        "DOUBLE",
        "ULAW",
        "ALAW",
        "IMA_ADPCM",
        "MS_ADPCM",
        "GSM610",
        "G721_32",
        "NMS_ADPCM_16",
        "NMS_ADPCM_24",
        "NMS_ADPCM_32",
        "MPEG_LAYER_III",
    ),
    "FLAC": ("PCM_S8", "PCM_16", "PCM_24"),
    "AIFF": (
        "PCM_S8",
        "PCM_16",
        "PCM_24",
        "PCM_32",
        "PCM_U8",
        "FLOAT",
        "DOUBLE",
        "ULAW",
        "ALAW",
        "IMA_ADPCM",
        "GSM610",
        "DWVW_12",
        "DWVW_16",
        "DWVW_24",
    ),
    "OGG": ("VORBIS", "OPUS"),
    "MP3": ("MPEG_LAYER_III", "MPEG_LAYER_II", "MPEG_LAYER_I"),
    "W64": (
        "PCM_16",
        "PCM_24",
        "PCM_32",
        "PCM_U8",
        "FLOAT",
        "DOUBLE",
        "ULAW",
        "ALAW",
        "IMA_ADPCM",
        "MS_ADPCM",
        "GSM610",
    ),
    "RF64": ("PCM_16", "PCM_24", "PCM_32", "PCM_U8", "FLOAT", "DOUBLE", "ULAW", "ALAW"),
    "CAF": (
        "PCM_S8",
        "PCM_16",
        "PCM_24",
        "PCM_32",
        "FLOAT",
        "DOUBLE",
        "ULAW",
        "ALAW",
        "ALAC_16",
        "ALAC_20",
        "ALAC_24",
        "ALAC_32",
    ),
    "AU": ("PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"),
}

#: the output subtypes a preset's ``output.subtype`` or ``--subtype`` may ask for
#: ("same": the input's own): the linear ones first, then every other subtype some
#: writable container holds
OUTPUT_SUBTYPES = (
    "same",
    "PCM_16",
    "PCM_24",
    "PCM_32",
    "FLOAT",
    "DOUBLE",
    "PCM_U8",
    "PCM_S8",
    *sorted(
        {s for subs in CONTAINER_SUBTYPES.values() for s in subs}
        - {"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8", "PCM_S8"}
    ),
)
#: linear PCM and float subtypes (a decoded input in one of them is carried over
#: to any container that holds it)
LINEAR_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})
#: lossy codecs: their outputs get a bitrate/quality and a true-peak check
LOSSY_SUBTYPES = frozenset({"VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III"})

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
FORMAT_EXTENSIONS = {
    "wav": ".wav",
    "flac": ".flac",
    "aiff": ".aiff",
    "ogg": ".ogg",
    "opus": ".opus",
    "mp3": ".mp3",
    "w64": ".w64",
    "rf64": ".rf64",
    "caf": ".caf",
}
#: bits per sample of the integer PCM subtypes
PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
#: libsndfile's major formats of the RIFF/WAVE family
WAV_FORMATS = frozenset({"WAV", "WAVEX", "RF64"})
#: extension (lower case) -> the libsndfile container a file of that name is written in
EXTENSION_CONTAINERS = {
    ".wav": "WAV",
    ".wave": "WAV",
    ".flac": "FLAC",
    ".aiff": "AIFF",
    ".aif": "AIFF",
    ".aifc": "AIFF",
    ".ogg": "OGG",
    ".oga": "OGG",
    ".opus": "OGG",
    ".mp3": "MP3",
    ".w64": "W64",
    ".rf64": "RF64",
    ".caf": "CAF",
    ".au": "AU",
    ".snd": "AU",
}
#: extension -> the codec a name of a lossy container implies (``.opus``: Opus in
#: OGG, ``.ogg``: Vorbis); an input already in that container keeps its own codec
EXTENSION_CODECS = {
    ".ogg": "VORBIS",
    ".oga": "VORBIS",
    ".opus": "OPUS",
    ".mp3": "MPEG_LAYER_III",
}
#: audio extensions no writer here can produce (an OUTPUT file named so is a
#: usage error, never a folder of that name)
UNWRITABLE_EXTENSIONS = frozenset(
    {
        ".m4a",
        ".m4b",
        ".m4r",
        ".mp4",
        ".aac",
        ".alac",
        ".wma",
        ".ape",
        ".wv",
        ".mka",
        ".webm",
        ".ac3",
        ".eac3",
        ".dts",
        ".amr",
        ".mp2",
        ".mpc",
        ".tta",
        ".dsf",
        ".dff",
        ".ra",
        ".3gp",
    }
)

#: ``--bits`` -> output subtype (8-bit is stored signed or unsigned as the container
#: requires: unsigned in WAV, signed in FLAC/AIFF; see fxcli.io.audio.output_format)
BITS_SUBTYPES = {
    "8": "PCM_U8",
    "16": "PCM_16",
    "24": "PCM_24",
    "32": "PCM_32",
    "float": "FLOAT",
    "double": "DOUBLE",
}
