"""The service process: `headwater serve` (HTTP, scheduler and run workers) and
`headwater worker` (run workers only).  See DESIGN.md §7."""
