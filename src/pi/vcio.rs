//! `/dev/vcio` (and `/dev/vcio_gencmd`): the kernel's door to the firmware mailbox. The only
//! unsafe code of the Pi collectors: one ioctl.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::mailbox::Mailbox;

/// `_IOWR(100, 0, char *)` for a given pointer width in bytes: direction read|write (3) in
/// bits 30-31, the argument size in bits 16-29, type 100 in bits 8-15, number 0.
/// 0xC0046400 with 32-bit pointers, 0xC0086400 with 64-bit ones.
pub const fn ioctl_request_number(pointer_bytes: u32) -> u32 {
    const IOC_READ_WRITE: u32 = 3;
    const VCIO_IOC_MAGIC: u32 = 100;
    (IOC_READ_WRITE << 30) | ((pointer_bytes & 0x3fff) << 16) | (VCIO_IOC_MAGIC << 8)
}

/// The request number of this build: the argument is a `char *`, so its size is the pointer
/// size of the process (a 32-bit agent on a 64-bit kernel uses the 32-bit number: compat ioctl).
pub const IOCTL_MBOX_PROPERTY: u32 =
    ioctl_request_number(std::mem::size_of::<*mut libc::c_char>() as u32);

pub struct Vcio {
    file: File,
}

impl Vcio {
    /// Opens the device. Read access suffices for the ioctl (the node is root:video 0660).
    pub fn open(path: &Path) -> io::Result<Vcio> {
        let file = OpenOptions::new().read(true).open(path)?;
        Ok(Vcio { file })
    }
}

impl Mailbox for Vcio {
    fn call(&mut self, buffer: &mut [u32]) -> io::Result<()> {
        // The kernel copies as many bytes as the first word says, in and out: never let it
        // say more than the buffer holds.
        let declared = buffer.first().copied().unwrap_or(0) as usize;
        if declared < 12 || declared > std::mem::size_of_val(buffer) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mailbox buffer size word does not match the buffer",
            ));
        }
        // SAFETY: the fd is open for the life of `self.file`; the pointer is valid for
        // `declared` bytes, checked above, for reads and writes, and not used elsewhere during
        // the call.
        let result = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                IOCTL_MBOX_PROPERTY as _,
                buffer.as_mut_ptr(),
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_for_both_pointer_widths() {
        assert_eq!(ioctl_request_number(4), 0xC004_6400);
        assert_eq!(ioctl_request_number(8), 0xC008_6400);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(IOCTL_MBOX_PROPERTY, 0xC008_6400);
        #[cfg(target_pointer_width = "32")]
        assert_eq!(IOCTL_MBOX_PROPERTY, 0xC004_6400);
    }

    #[test]
    fn a_missing_device_and_a_file_that_is_no_device_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = Vcio::open(&dir.path().join("vcio")).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        // A regular file opens but refuses the ioctl (ENOTTY): an error, no crash.
        let path = dir.path().join("file");
        std::fs::write(&path, b"").unwrap();
        let mut vcio = Vcio::open(&path).unwrap();
        let mut buffer = super::super::mailbox::build_request(0x0003_0006, &[0, 0], 8);
        let err = vcio.call(&mut buffer).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTTY));
        // A size word larger than the buffer never reaches the kernel.
        buffer[0] = 4096;
        assert_eq!(
            vcio.call(&mut buffer).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
