"""A module that cannot be imported: the daemon must report it and go on."""

raise ImportError("this agent module is broken on purpose")
