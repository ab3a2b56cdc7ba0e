//! Sets the linker flags a Node.js addon needs (undefined N-API symbols resolved at load).

fn main() {
    napi_build::setup();
}
