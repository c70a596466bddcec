"""dlbasics: the first chapters of the "Deep Learning Basics" lecture notes as Lightning + Hydra experiments."""
