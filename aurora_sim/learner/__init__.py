"""Draft training: the losses (losses), the offline distillation that makes the paper's 'static
draft' arm (offline), and the online learner that trains on served traffic in virtual time:
samples (what is captured from a served request), buffer, batch (tensors + the teacher's
features), online (the trainer), evaluate (a candidate's acceptance estimate)."""
