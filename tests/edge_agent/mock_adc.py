"""An MCP3xxx on gpiozero's MockSPIDevice (the recipe of gpiozero's own test suite)."""

from __future__ import annotations

from typing import Any

from gpiozero.pins.mock import MockSPIDevice


class MockMCP3008(MockSPIDevice):
    """Answers single-ended conversions with `channels[n]` volts against a 3.3 V reference."""

    def __init__(self, factory: Any, bits: int = 10) -> None:
        # Hardware SPI port 0, device 0 is software SPI on clock 11, MOSI 10, MISO 9, CE0 8.
        super().__init__(11, 10, 9, 8, pin_factory=factory)
        self.vref = 3.3
        self.channels = [0.0] * 8
        self.bits = bits
        self.phase = "idle"

    def on_start(self) -> None:
        super().on_start()
        self.phase = "idle"

    def on_bit(self) -> None:
        if self.phase == "idle":
            if self.rx_buf[-1]:
                self.phase, self.rx_buf = "mode", []
        elif self.phase == "mode":
            self.phase, self.rx_buf = ("single" if self.rx_buf[-1] else "diff"), []
        elif self.phase in ("single", "diff"):
            if len(self.rx_buf) == 3:
                volts = min(max(self.channels[self.rx_word()], 0.0), self.vref)
                self.tx_word(round(volts / self.vref * (2**self.bits - 1)), self.bits + 2)
                self.phase = "result"
        elif self.phase == "result" and not self.tx_buf:
            self.phase, self.rx_buf = "idle", []
