"""A plugin whose import fails: vtbench must name it and carry on."""

raise ImportError("this plugin is broken on purpose")
