// Lab — see ../shared/DESIGN.md for what this layer holds.
