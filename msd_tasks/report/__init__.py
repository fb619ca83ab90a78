"""The build report: the build's summary, its figures and the HTML page."""
