"""An example vtbench plugin package: one tokenizer, one dataset and one metric."""
