import { simulatedBox, type SimulatorOptions } from '../../nodes/lib/simulator/cli';
import { EcoDevicesSimulator, SimClock } from '../../nodes/lib/simulator/ecodevices-server';

/** A simulated Eco-Devices box on a free port, in this process, with its clock frozen at `start`. */
export async function startBox(options: Partial<SimulatorOptions> = {}): Promise<EcoDevicesSimulator> {
  const start = options.start ?? Date.parse('2026-01-15T18:00:00Z');
  const full: SimulatorOptions = {
    boxes: 1,
    contract: 'HC',
    contract2: null,
    phases: 1,
    isousc: 45,
    seed: 7,
    ...options,
    start,
  };
  const box = simulatedBox(full, 0, new SimClock(start, 0));
  await box.listen(0);
  return box;
}
