"""How long a run is and when it logs, evaluates and checkpoints, in optimizer steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UserInputError


@dataclass(frozen=True)
class TrainingPlan:
    steps_per_epoch: int
    max_train_steps: int
    eval_steps: int
    checkpointing_steps: int
    logging_steps: int

    @classmethod
    def for_run(
        cls,
        *,
        batches_per_epoch: int,
        batch_size: int,
        gradient_accumulation_steps: int,
        num_train_epochs: int,
        max_train_steps: int | None = None,
        eval_steps: int | None = None,
        checkpointing_steps: int | None = None,
        logging_steps: int = 20,
    ) -> TrainingPlan:
        """The plan of a run over `batches_per_epoch` batches of `batch_size` per process; the defaults are the
        original recipe's (evaluate every 10 epochs, checkpoint every epoch)."""
        steps_per_epoch = math.ceil(batches_per_epoch / gradient_accumulation_steps)
        if steps_per_epoch == 0:
            raise UserInputError(
                f"The training split has fewer images than one batch of {batch_size} per process: lower "
                "--per_device_train_batch_size or add images."
            )
        return cls(
            steps_per_epoch=steps_per_epoch,
            max_train_steps=max_train_steps or num_train_epochs * steps_per_epoch,
            eval_steps=eval_steps or 10 * steps_per_epoch,
            checkpointing_steps=checkpointing_steps or steps_per_epoch,
            logging_steps=logging_steps,
        )

    @property
    def num_epochs(self) -> int:
        return math.ceil(self.max_train_steps / self.steps_per_epoch)

    def is_finished(self, step: int) -> bool:
        return step >= self.max_train_steps

    def is_logging_step(self, step: int) -> bool:
        """Every `logging_steps` and the last step: the loop's only host synchronizations."""
        return step % self.logging_steps == 0 or self.is_finished(step)

    def is_eval_step(self, step: int) -> bool:
        return step % self.eval_steps == 0 or self.is_finished(step)

    def is_checkpoint_step(self, step: int) -> bool:
        """Every `checkpointing_steps` and the last step, so that a finished run ends on a checkpoint."""
        return step % self.checkpointing_steps == 0 or self.is_finished(step)

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def batches_done_in_epoch(self, step: int, gradient_accumulation_steps: int) -> int:
        """The batches of the current epoch that a run resumed at `step` has already trained on."""
        return (step - self.epoch_of(step) * self.steps_per_epoch) * gradient_accumulation_steps
