"""The knowledge-tracing engine. Pure numerical code: no Django imports, usable as a library."""
