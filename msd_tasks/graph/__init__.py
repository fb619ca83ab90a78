"""The Luigi graph: settings, one task per stage, publication and BuildAll."""
