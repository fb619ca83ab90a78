"""Pure stages of the data's journey: raw bytes in, arrays and tables out; no Luigi, no paths
of other stages."""
