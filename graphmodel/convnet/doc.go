// Package convnet is a small eps-prediction network written with gorgonia
// and trainable in pure Go: the model of examples/gotrain, and a worked
// example of a graphmodel.BuildFunc.
//
// # The network
//
// Net is fully convolutional (3x3 convolutions, one 2x2 average pooling
// and one nearest-neighbour upsampling, no attention, no normalisation),
// so the same parameters run at any even height and width: at the 14x14
// it was trained at, at 28x28 and 56x56 for Upsample Guidance, at 14x14
// again for guidance's low-resolution call. The timestep enters through a
// sinusoidal embedding computed inside the graph from the float32 t that
// ugo.Denoiser passes (fractional timesteps, as Upsample Guidance's time
// matching produces, need no rounding), a small MLP, and a per-channel
// shift of every convolution's output. Net's documentation spells the
// forward pass out; the tests check the graph against a direct float64
// implementation of it, and its gradients against finite differences.
//
//	net, err := convnet.New(convnet.DefaultConfig(), seed)
//	model, err := net.Denoiser() // a *graphmodel.Model, a ugo.Denoiser
//
// # Training
//
// Trainer minimises the v-prediction loss mean((v(x_t, t) - v)^2) (the
// DDPM loss on eps weighted by SNR+1) with gorgonia's Adam solver on a graph of the network at the batch shape
// (gorgonia.Grad builds the backward graph; the TapeMachine binds dual
// values to the parameters). Step draws timesteps and noise itself from a
// seed; StepOn takes them from the caller. The parameters are updated in
// place, so Denoisers made from the Net see the new values at their next
// call. Trainer can keep an exponential moving average of the parameters
// (TrainConfig.EMADecay), which samples better than the raw parameters
// after short runs.
//
//	tr, err := convnet.NewTrainer(net, convnet.TrainConfig{Batch: 32, Height: 14, Width: 14})
//	loss, err := tr.Step(batch) // batch: 32*1*14*14 values in [-1, 1]
//
// # Files
//
// Save and Load (WriteTo and Read for streams) store the configuration and
// the parameters in a small documented binary format (see WriteTo): a
// magic string and version, the configuration, every parameter with its
// name and shape, and a CRC-32. Read checks each of them and reports a
// wrong, truncated or corrupt file as an error wrapping ErrFormat; a NaN or
// infinite parameter wraps ugo.ErrNonFinite too.
//
// # Errors
//
// Config.Validate reports sizes outside their limits; New and Read refuse a
// configuration whose parameters would exceed ugo.MemoryLimit with a
// *ugo.MemoryError before allocating them (a header of a few hundred bytes
// can describe tens of gigabytes); Read's format errors wrap ErrFormat.
package convnet
