"""The ERA course's own material: the backpropagation sheet and the write-ups' reproduction."""
