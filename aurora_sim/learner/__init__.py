"""Draft training: the losses (shared by the offline and, later, the online learner) and the
offline distillation that makes the paper's 'static draft' arm."""
