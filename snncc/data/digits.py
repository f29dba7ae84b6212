def load_digits(split="train", seed=0): raise NotImplementedError
