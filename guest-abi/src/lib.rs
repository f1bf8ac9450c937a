//! The guest ABI shared by isolab's VMM (`microvm`), the tiny guest
//! (`guest/tiny`) and the workload as a Linux guest's `/init`
//! (`workload/src/linux`): the isolab device's ports and the tiny guest's
//! boot information block, and the virtio-mmio registers both sides use.
//! `no_std`, constants and plain data only, so the
//! freestanding guest can use it too. ARCHITECTURE.md ("Guest ABI") says
//! what each port does.

#![no_std]

pub mod port;
pub mod tiny;
pub mod virtio_mmio;
