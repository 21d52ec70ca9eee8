"""Update compression: exact wire sizes (:mod:`.codecs`), error feedback (:mod:`.feedback`)."""
