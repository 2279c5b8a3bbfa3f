"""The card's *Train* section: a torch DataLoader over a SQL projection, and a few
steps of a linear classifier telling fours from nines. Needs the ``clip`` extra (torch).

    python examples/train.py [ROOT]

The query picks the rows; only its columns are read, by random access, so the image
bytes are never read and the loader may shuffle freely.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from examples.common import example_root


def main(root: str | None = None) -> None:
    try:
        import torch
    except ImportError:
        print("-- Train: skipped (install torch: pip install 'lancesql[clip]')\n")
        return
    torch.manual_seed(0)
    with lancesql.connect(example_root(root)) as con:
        sql = "SELECT image_emb, label FROM mnist WHERE label IN (4, 9)"
        dataset = lancesql.torch_dataset(con, sql)
        print(f"-- Train on {len(dataset)} rows of: {sql}")
        loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True)
        model = torch.nn.Linear(512, 1)
        optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
        for epoch in range(3):
            total, correct, loss_sum = 0, 0, 0.0
            for batch in loader:
                x, y = batch["image_emb"], (batch["label"] == 9).float()
                logits = model(x).squeeze(1)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                loss_sum += float(loss.detach()) * len(y)
                correct += int(((logits > 0).float() == y).sum())
                total += len(y)
            print(f"  epoch {epoch}: loss {loss_sum / total:.3f}, accuracy {correct / total:.3f}")
        print()


if __name__ == "__main__":
    main(*sys.argv[1:2])
