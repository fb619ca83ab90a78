"""File formats: the raw inputs' layout, atomic writes, the checkpoint targets, the deliverables
and their publication."""
