"""Filter pruning (masks, automated gradual schedule, physical removal) and FLOP counting."""
